#!/usr/bin/env python
"""Ledger benchmark on PostgreSQL: appends, proofs at scale, full verification.

    python bench/ledger_bench.py [--entries 1000000] [--database-url postgres://...] [--quick]

Creates (and afterwards drops) a scratch database, and prints each figure beside the
baseline measured in the same run on the same machine:

- appends through the Python API: one writer (one entry per transaction), 8 writer
  processes, one bulk append of 100,000 entries; p50/p99 latency. Baselines: a bare
  INSERT + COMMIT of a row of the same size, and a bare COPY of the same rows.
- inclusion and consistency proofs at the full size: p50/p99, through the Python API
  and through HTTP (Django test client, bearer token, JSON rendering).
- `ledger verify` over every entry, as a ratio to the raw PyNaCl verify rate of one
  process times the number of cores.

Checkpoint publication after each commit is turned off while appends are timed
(LEDGER_PUBLISH_ON_APPEND=0): in production it is a debounced background task, and it
is timed on its own here.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import secrets
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def setup_env(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    os.environ.setdefault("LEDGER_KEK", secrets.token_bytes(32).hex())
    os.environ["LEDGER_PUBLISH_ON_APPEND"] = "0"
    # A scratch ledger's published checkpoint is its own (docs/backups.md).
    os.environ["LEDGER_PUBLISHED_PATH"] = tempfile.mkdtemp(prefix="bench-ledger-") + "/published"
    os.environ["ALLOWED_HOSTS"] = "testserver"  # the in-process HTTP client
    os.environ.pop("CELERY_BROKER_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "consortium.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")


def recreate_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def payload(n: int) -> dict:
    # A realistic small entry: a compute contribution record.
    return {
        "member": "FR",
        "facility": "Jean Zay",
        "accelerator": "h100",
        "gpu_hours": 1200 + n % 97,
        "period": {"start": "2026-10-01", "end": "2026-10-31"},
        "evidence": "sha256:" + f"{n:064x}",
        "n": n,
    }


# --- appends -------------------------------------------------------------------------


def baseline_insert(count: int, size: int) -> float:
    """Rate of a bare INSERT + COMMIT of a row like a leaf, one per transaction."""
    from django.db import connection, transaction

    with connection.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS bench_plain (id bigint PRIMARY KEY, data bytea)")
    blob = os.urandom(size)
    t0 = time.perf_counter()
    for i in range(count):
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute("INSERT INTO bench_plain VALUES (%s, %s)", [i, blob])
    return count / (time.perf_counter() - t0)


def baseline_copy(count: int, size: int) -> float:
    """Rate of a bare COPY of rows like leaves (plus their hash rows), one transaction."""
    from django.db import connection, transaction

    with connection.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS bench_copy (id bigint PRIMARY KEY, data bytea)")
        cur.execute("CREATE TABLE IF NOT EXISTS bench_copy_h (id bigint PRIMARY KEY, h bytea)")
    blob = os.urandom(size)
    t0 = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cur:
        with cur.cursor.copy("COPY bench_copy (id, data) FROM STDIN") as copy:
            for i in range(count):
                copy.write_row((i, blob))
        with cur.cursor.copy("COPY bench_copy_h (id, h) FROM STDIN") as copy:
            for i in range(2 * count):
                copy.write_row((i, blob[:32]))
    return count / (time.perf_counter() - t0)


def single_writer(signer, count: int) -> list[float]:
    from django.db import transaction

    from ledger import services

    lat = []
    for i in range(count):
        t = time.perf_counter()
        with transaction.atomic(durable=True):
            services.entry_append(signer=signer, kind="bench.sample", payload=payload(i))
        lat.append(time.perf_counter() - t)
    return lat


def _writer_proc(fingerprint: str, count: int, barrier, out) -> None:
    import django

    django.setup()
    from ledger.services import hosted_signer

    signer = hosted_signer(fingerprint)
    barrier.wait()
    out.put(single_writer(signer, count))


def concurrent_writers(fingerprint: str, writers: int, count: int) -> tuple[float, list[float]]:
    from django.db import connections

    connections.close_all()
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(writers + 1)
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_writer_proc, args=(fingerprint, count, barrier, out))
        for _ in range(writers)
    ]
    for p in procs:
        p.start()
    barrier.wait()
    t0 = time.perf_counter()
    lat: list[float] = []
    for _ in procs:
        lat += out.get()
    wall = time.perf_counter() - t0
    for p in procs:
        p.join()
        if p.exitcode != 0:
            raise RuntimeError("a writer process failed")
    return writers * count / wall, lat


def concurrent_threads(signer, writers: int, count: int) -> tuple[float, list[float]]:
    """Writer threads in one process, each append in a transaction of its own making:
    the path of API ingestion and importers, where concurrent appends share a commit."""
    import threading

    from django.db import connection

    from ledger import services

    barrier = threading.Barrier(writers + 1)
    lat: list[float] = []

    def work(w: int) -> None:
        mine = []
        barrier.wait()
        for i in range(count):
            t = time.perf_counter()
            services.entry_append(
                signer=signer, kind="bench.sample", payload=payload(w * count + i)
            )
            mine.append(time.perf_counter() - t)
        lat.extend(mine)
        connection.close()

    threads = [threading.Thread(target=work, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    return writers * count / (time.perf_counter() - t0), lat


def bulk(signer, count: int, start: int) -> tuple[float, float]:
    """(entries/s for sign + append, entries/s for the append alone)."""
    from django.db import transaction

    from ledger import log, services
    from ledger.services import Draft

    t0 = time.perf_counter()
    origin = services.log_origin()
    signed = [
        services._sign(signer, Draft("bench.sample", payload(start + i)), origin)
        for i in range(count)
    ]
    t1 = time.perf_counter()
    with transaction.atomic(durable=True):
        log.append_signed(signed)
    t2 = time.perf_counter()
    return count / (t2 - t0), count / (t2 - t1)


# --- proofs and verification ------------------------------------------------------------


def proofs(size: int, count: int) -> dict:
    from django.contrib.auth import get_user_model
    from rest_framework.test import APIClient

    from consortium.governance.models import ApiToken
    from ledger.core import merkle
    from ledger.proofs import consistency_proof, inclusion_proof, root_at

    rng = random.Random(7)
    root = root_at(size)
    inc, con = [], []
    for _ in range(count):
        i = rng.randrange(size)
        t = time.perf_counter()
        proof = inclusion_proof(i, size)
        inc.append(time.perf_counter() - t)
        m = rng.randrange(1, size)
        t = time.perf_counter()
        cproof = consistency_proof(m, size)
        con.append(time.perf_counter() - t)
    # Check a sample of what was timed, so the figures are of correct proofs.
    from ledger.services import Entry

    for _ in range(20):
        i = rng.randrange(size)
        lh = bytes(Entry.objects.get(index=i).leaf_hash)
        merkle.verify_inclusion(i, size, lh, inclusion_proof(i, size), root)
        m = rng.randrange(1, size)
        merkle.verify_consistency(m, size, root_at(m), root, consistency_proof(m, size))
    del proof, cproof

    # The API answers only users who hold a seat: read as a treaty auditor's system would.
    from consortium.governance import members as governance
    from consortium.governance import seats
    from consortium.governance.models import Consortium

    if not Consortium.objects.exists():
        governance.consortium_found(
            name="Bench", members=[governance.member_record(code=c) for c in ("FR", "DE")]
        )
    user = get_user_model().objects.create_user("bench-auditor")
    seats.seat_assign(actor=None, user=user, role="auditor")
    _, token = ApiToken.issue(user=user, days=1)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    http_inc, http_con = [], []
    for _ in range(count // 4):
        i = rng.randrange(size)
        t = time.perf_counter()
        r = client.get(f"/api/v1/ledger/proofs/inclusion?index={i}&tree_size={size}")
        http_inc.append(time.perf_counter() - t)
        assert r.status_code == 200
        m = rng.randrange(1, size)
        t = time.perf_counter()
        r = client.get(f"/api/v1/ledger/proofs/consistency?from={m}&to={size}")
        http_con.append(time.perf_counter() - t)
        assert r.status_code == 200
    return {
        "inclusion": inc,
        "consistency": con,
        "http_inclusion": http_inc,
        "http_consistency": http_con,
    }


def raw_verify_rate(count: int) -> float:
    """One process, PyNaCl verify over real leaves of this ledger (signature only)."""
    from nacl.signing import VerifyKey

    from ledger.core.envelope import parse_leaf, signing_message
    from ledger.services import Entry, Key, log_origin

    keys = {k.fingerprint: VerifyKey(bytes(k.public_key)) for k in Key.objects.all()}
    origin = log_origin()
    items = []
    for e in Entry.objects.filter(index__gte=2).order_by("index")[:count]:
        leaf = parse_leaf(bytes(e.leaf))
        items.append((keys[e.author], signing_message(leaf.envelope_bytes, origin), leaf.signature))
    t0 = time.perf_counter()
    for vk, msg, sig in items:
        vk.verify(msg, sig)
    return len(items) / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/ledger_bench")
    parser.add_argument(
        "--entries", type=int, default=1_000_000, help="Ledger size for proofs and verify."
    )
    parser.add_argument("--single", type=int, default=2000, help="Appends by the single writer.")
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--per-writer", type=int, default=500)
    parser.add_argument("--bulk", type=int, default=100_000)
    parser.add_argument("--proofs", type=int, default=2000)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="Small sizes for a smoke test: 20,000 entries, 200 single appends, 4 writers x 50,"
        " a bulk of 5,000, 200 proofs.",
    )
    parser.add_argument("--keep", action="store_true", help="Keep the scratch database.")
    parser.add_argument("--json", type=Path, default=ROOT / "var" / "bench-ledger.json")
    args = parser.parse_args()
    if args.quick:
        args.entries, args.single, args.writers = 20_000, 200, 4
        args.per_writer, args.bulk, args.proofs = 50, 5_000, 200

    setup_env(args.database_url)
    recreate_database(args.database_url)
    import django

    django.setup()
    from django.core.management import call_command

    from ledger import services
    from ledger.services import log_signer
    from ledger.verify import verify_ledger

    call_command("migrate", verbosity=0)
    services.ledger_init()
    _, signer = services.key_register(
        signer=log_signer(), kind="service", owner="bench", name="bench"
    )
    cores = os.cpu_count() or 1
    results: dict = {"cores": cores, "entries": args.entries}
    print(f"ledger benchmark on PostgreSQL, {cores} cores, target size {args.entries:,}\n")

    leaf_size = 650
    base_single = baseline_insert(args.single, leaf_size)
    lat = single_writer(signer, args.single)
    rate = len(lat) / sum(lat)
    results["single"] = {
        "rate": rate,
        "p50": pct(lat, 0.5),
        "p99": pct(lat, 0.99),
        "baseline_insert_rate": base_single,
    }
    print(
        f"append, 1 writer:      {rate:8.0f} entries/s  p50 {ms(pct(lat, 0.5))}  p99 {ms(pct(lat, 0.99))}"
        f"   (bare INSERT+COMMIT: {base_single:.0f}/s, ratio {rate / base_single:.2f})"
    )

    rate8, lat8 = concurrent_writers(signer.fingerprint, args.writers, args.per_writer)
    results["concurrent"] = {
        "writers": args.writers,
        "rate": rate8,
        "p50": pct(lat8, 0.5),
        "p99": pct(lat8, 0.99),
    }
    print(
        f"append, {args.writers} processes:   {rate8:8.0f} entries/s  p50 {ms(pct(lat8, 0.5))}  p99 {ms(pct(lat8, 0.99))}"
        f"   (vs 1 writer: {rate8 / rate:.2f}x)"
    )

    rate_t, lat_t = concurrent_threads(signer, args.writers, args.per_writer)
    results["concurrent_threads"] = {
        "writers": args.writers,
        "rate": rate_t,
        "p50": pct(lat_t, 0.5),
        "p99": pct(lat_t, 0.99),
    }
    print(
        f"append, {args.writers} threads:     {rate_t:8.0f} entries/s  p50 {ms(pct(lat_t, 0.5))}  p99 {ms(pct(lat_t, 0.99))}"
        f"   (group commit; vs 1 writer: {rate_t / rate:.2f}x)"
    )

    base_copy = baseline_copy(args.bulk, leaf_size)
    start = services.tree_size()
    total_rate, append_rate = bulk(signer, args.bulk, start)
    results["bulk"] = {
        "count": args.bulk,
        "rate": total_rate,
        "append_only_rate": append_rate,
        "baseline_copy_rate": base_copy,
    }
    print(
        f"append, bulk {args.bulk:,}: {total_rate:8.0f} entries/s (signing included; append alone {append_rate:.0f}/s,"
        f" bare COPY {base_copy:.0f}/s)"
    )

    t0 = time.perf_counter()
    while services.tree_size() < args.entries:
        n = min(100_000, args.entries - services.tree_size())
        bulk(signer, n, services.tree_size())
    fill = time.perf_counter() - t0
    size = services.tree_size()
    t0 = time.perf_counter()
    services.publish_checkpoint()
    publish = time.perf_counter() - t0
    results["fill_seconds"] = fill
    results["publish_checkpoint_seconds"] = publish
    print(f"\nfilled to {size:,} entries in {fill:.0f} s; checkpoint signed in {ms(publish)}")

    p = proofs(size, args.proofs)
    results["proofs"] = {
        k: {"p50": pct(v, 0.5), "p99": pct(v, 0.99), "n": len(v)} for k, v in p.items()
    }
    for k, v in p.items():
        print(
            f"{k.replace('_', ' ') + ' proof':24} p50 {ms(pct(v, 0.5))}  p99 {ms(pct(v, 0.99))}  ({len(v)} proofs at size {size:,})"
        )

    raw = raw_verify_rate(20000)
    t0 = time.perf_counter()
    report = verify_ledger(workers=cores)
    vt = time.perf_counter() - t0
    vrate = report.size / vt
    ratio = vrate / (raw * cores)
    results["verify"] = {
        "ok": report.ok,
        "seconds": vt,
        "rate": vrate,
        "raw_verify_rate": raw,
        "ratio": ratio,
    }
    print(f"\nverify {report.size:,} entries: {vt:.1f} s, {vrate:.0f} entries/s, ok={report.ok}")
    print(
        f"raw PyNaCl verify: {raw:.0f}/s per core x {cores} cores = {raw * cores:.0f}/s;"
        f" verify ratio {ratio:.2f}"
    )

    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2))
    print(f"\nfigures written to {args.json}")
    from django.db import connections

    connections.close_all()
    if not args.keep:
        drop_database(args.database_url)
    if not report.ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
