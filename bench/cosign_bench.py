#!/usr/bin/env python
"""Cosigning benchmark on PostgreSQL: what collecting cosignatures from seven witnesses
adds to checkpoint publication.

    python bench/cosign_bench.py [--rounds 200] [--entries 20] [--quick]

Creates (and afterwards drops) a scratch database. A consortium of seven members, each
of whose signatories registers its witness: ``python -m ledger.witness serve`` as a real
process on a loopback port, with its own key and its own SQLite state (every cosignature
on disk, ``synchronous=FULL``, before its reply).

Each round appends ``--entries`` entries (not timed) and publishes a checkpoint, timed:
signing and storing it, and, when the witnesses are asked, sending it with its
consistency proof to all seven at once and verifying and storing their cosignatures.
Rounds alternate between the two (the baseline's rounds publish without asking the
witnesses, who then get a longer proof the round after), so both see the same database
and machine. Printed: p50 and p99 of each, the p99 added, and the ratio. Target: at most
200 ms added at p99.
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SCRATCH = "bench_cosign"
TARGET_MS = 200
MEMBERS = ("FR", "DE", "IT", "ES", "NL", "SE", "FI")


def say(text: str = "") -> None:
    print(text, flush=True)


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def setup(database_url: str) -> str:
    url = database_url.rsplit("/", 1)[0] + "/" + SCRATCH
    os.environ.update(
        {
            "DATABASE_URL": url,
            "LEDGER_PUBLISH_ON_APPEND": "0",
            # A scratch ledger's published checkpoint is its own (docs/backups.md).
            "LEDGER_PUBLISHED_PATH": tempfile.mkdtemp(prefix="bench-cosign-") + "/published",
            "DJANGO_SETTINGS_MODULE": "consortium.settings",
            "LOG_LEVEL": "WARNING",
            # The benchmark's witnesses run on 127.0.0.1.
            "LEDGER_WITNESS_ALLOW_PRIVATE": "1",
        }
    )
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    os.environ.setdefault("LEDGER_KEK", secrets.token_bytes(32).hex())
    os.environ.pop("CELERY_BROKER_URL", None)  # tasks run in-process, as in the timing
    _database(url, create=True)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    return url


def _database(url: str, *, create: bool) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if create:
            conn.execute(f'CREATE DATABASE "{name}"')


def start_witnesses(tmp: Path) -> list[tuple[subprocess.Popen, str, str]]:
    """Seven witnesses of the log (key, state, port of their own): (process, URL, vkey)."""
    from ledger.keys import log_signer
    from ledger.models import Key

    log = f"{log_signer().name} {Key.objects.get(kind='log').verifier_key}"
    started = []
    for code in MEMBERS:
        home = tmp / code
        home.mkdir()
        key = home / "witness.key"
        vkey = subprocess.run(
            [
                sys.executable,
                "-m",
                "ledger.witness",
                "keygen",
                "--name",
                f"witness.{code.lower()}.example",
                "--out",
                str(key),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ledger.witness",
                "serve",
                "--key",
                str(key),
                "--state",
                str(home / "state.sqlite"),
                "--log",
                log,
                "--listen",
                "127.0.0.1:0",
                "--rate-limit",
                "0",
                "--quiet",
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        line = proc.stdout.readline()
        while line and not line.startswith("listening on "):
            line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"witness {code} did not start: {proc.stderr.read()}")
        started.append((proc, line.split(" ", 2)[2].strip(), vkey))
    return started


def world(witnesses) -> object:
    """Seven members; each signatory registers its member's witness. The secretariat's
    key, which appends the entries."""
    from django.contrib.auth import get_user_model

    from consortium.governance import members as governance
    from consortium.governance import seats
    from consortium.governance.changes import secretariat_signer
    from consortium.governance.witnesses import witness_register

    governance.consortium_found(
        name="Bench",
        members=[governance.member_record(code=c, figures={"population": 10}) for c in MEMBERS],
    )
    User = get_user_model()
    ops = User.objects.create_user("ops")
    seats.seat_assign(actor=None, user=ops, role="secretariat")
    for code, (_, url, vkey) in zip(MEMBERS, witnesses, strict=True):
        sig = User.objects.create_user(f"sig_{code.lower()}")
        seats.seat_assign(actor=ops, user=sig, role="signatory", member=code)
        witness_register(actor=sig, member=code, url=url, vkey=vkey)
    return secretariat_signer()


def run(rounds: int, entries: int, signer) -> dict:
    from ledger import checkpoints, services
    from ledger.models import Cosignature

    real = checkpoints.request_cosignatures
    times = {"with": [], "without": []}
    for i in range(rounds * 2):
        services.entries_append(
            signer=signer,
            drafts=[services.Draft("bench.sample", {"round": i, "n": n}) for n in range(entries)],
        )
        ask = i % 2 == 1
        checkpoints.request_cosignatures = real if ask else (lambda cp: None)
        t0 = time.perf_counter()
        cp = services.publish_checkpoint()
        times["with" if ask else "without"].append((time.perf_counter() - t0) * 1000)
        if ask and Cosignature.objects.filter(checkpoint=cp).count() != len(MEMBERS):
            raise SystemExit(f"round {i}: not every witness cosigned size {cp.tree_size}")
    checkpoints.request_cosignatures = real
    out = {}
    for k, v in times.items():
        out[f"{k}_p50"], out[f"{k}_p99"] = pct(v, 0.5), pct(v, 0.99)
    out["added_p99"] = out["with_p99"] - out["without_p99"]
    out["ratio_p50"] = out["with_p50"] / out["without_p50"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--rounds", type=int, default=200, help="publications of each kind")
    parser.add_argument("--entries", type=int, default=20, help="entries appended per round")
    parser.add_argument("--quick", action="store_true", help="40 rounds of each.")
    args = parser.parse_args()
    if args.quick:
        args.rounds = 40
    url = setup(args.database_url)
    tmp = Path(tempfile.mkdtemp(prefix="bench-cosign-"))
    witnesses = []
    try:
        from ledger import services

        services.ledger_init()
        witnesses = start_witnesses(tmp)
        signer = world(witnesses)
        r = run(args.rounds, args.entries, signer)
        say(f"cosigning benchmark, {os.cpu_count()} cores, {len(MEMBERS)} witnesses as processes")
        say(
            f"publish a checkpoint ({args.rounds} of each, {args.entries} entries between): "
            f"without witnesses p50 {r['without_p50']:.1f} ms, p99 {r['without_p99']:.1f} ms; "
            f"with 7 cosignatures collected p50 {r['with_p50']:.1f} ms, p99 {r['with_p99']:.1f} ms"
        )
        say(
            f"  added at p99: {r['added_p99']:.1f} ms (target <= {TARGET_MS} ms: "
            f"{'met' if r['added_p99'] <= TARGET_MS else 'MISSED'}); ratio at p50 "
            f"{r['ratio_p50']:.2f}"
        )
    finally:
        for proc, _, _ in witnesses:
            proc.terminate()
            proc.wait(10)
        from django.db import connections

        connections.close_all()
        _database(url, create=False)


if __name__ == "__main__":
    main()
