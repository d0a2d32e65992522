#!/usr/bin/env python
"""Restore drill benchmark on PostgreSQL: a million-entry ledger backed up, restored by
``scripts/restore-drill.sh``, verified, replayed and compared with what was published;
and an older backup brought back level by ``ledger ingest``.

    python bench/restore_drill_bench.py [--entries 1000000] [--quick]

Creates (and afterwards drops) scratch databases and a temporary directory.

- fill: the ledger filled with signed entries in bulk (20,000 per transaction), a
  checkpoint published every 100,000 and at the end; ``pg_dump -Fc`` at 90 % (the old
  backup) and at the end (the backup), and an audit export of the last 10 %.
- drill: ``scripts/restore-drill.sh --dump`` on the backup: restore (createdb +
  pg_restore), ``ledger verify`` (one worker per core), ``ledger replay --check``,
  ``ledger behind``; each phase's time as the script prints it, and the total: the time
  to be ready.
- ingest: the old backup restored (``ledger behind`` says what is missing), then ``ledger
  ingest`` of the export: the time to be ready again.
- baselines, same run: a bare ``pg_restore`` of the same dump into a new database, and
  reading the whole entries table (every leaf's bytes) in one query.
- the guard every append runs (``ledger.published.refuse_append``), timed over 20,000
  calls, against one ``os.stat`` of the published file.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
SCRATCH = "bench_restore"

from downloads_bench import drop_database, recreate_database, say, scratch_project  # noqa: E402


def fill(to: int) -> float:
    from django.db import transaction

    from ledger import services
    from ledger.services import Draft, log_signer

    if services.tree_size() == 0:
        services.ledger_init()
        services.key_register(signer=log_signer(), kind="service", owner="filler", name="filler")
    from ledger.keys import hosted_signer
    from ledger.models import Key

    filler = hosted_signer(Key.objects.get(owner="filler").fingerprint)
    t0 = time.perf_counter()
    while (size := services.tree_size()) < to:
        n = min(20_000, to - size)
        with transaction.atomic(durable=True):
            services.entries_append(
                signer=filler,
                drafts=[
                    Draft("bench.sample", {"n": size + i, "note": "a sample entry"})
                    for i in range(n)
                ],
            )
        if services.tree_size() // 100_000 != size // 100_000:
            services.publish_checkpoint()
    services.publish_checkpoint()
    return time.perf_counter() - t0


def guard_cost(size: int, calls: int = 20_000) -> None:
    """The check every append makes under the sequence lock, against its baseline: the
    stat of the published file (and of the witnesses' record) it costs when nothing
    changed."""
    from ledger import published

    published.refuse_append(size)  # the first call reads the file and checks the root
    t0 = time.perf_counter()
    for _ in range(calls):
        published.refuse_append(size)
    guard = (time.perf_counter() - t0) / calls
    path = published.path()
    t0 = time.perf_counter()
    for _ in range(calls):
        os.stat(path)
    stat = (time.perf_counter() - t0) / calls
    say(f"append-path guard: {guard * 1e6:.1f} us a call; baseline one os.stat {stat * 1e6:.1f} us")


def run(
    cmd: list[str], env: dict | None = None, ok=(0,)
) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    took = time.perf_counter() - t0
    if out.returncode not in ok:
        raise SystemExit(f"{' '.join(cmd)}: exit {out.returncode}\n{out.stdout}\n{out.stderr}")
    return took, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--quick", action="store_true", help="20,000 entries")
    args = ap.parse_args()
    entries = 20_000 if args.quick else args.entries
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    if not base.startswith("postgres"):
        raise SystemExit("DATABASE_URL must be a PostgreSQL URL")
    server = base.rsplit("/", 1)[0] + "/postgres"
    with scratch_project(base, SCRATCH, "bench-restore-") as tmp:
        os.environ["LEDGER_PUBLISHED_PATH"] = str(tmp / "outside" / "published-checkpoint")
        os.environ["VAR_DIR"] = str(tmp / "var")
        from django.conf import settings

        settings.LEDGER_PUBLISHED_PATH = Path(os.environ["LEDGER_PUBLISHED_PATH"])
        from ledger import export, services

        live = os.environ["DATABASE_URL"]
        old_size = entries * 9 // 10
        say(f"restore drill benchmark: {entries:,} entries, PostgreSQL {live.rsplit('@', 1)[-1]}")
        took = fill(old_size)
        old_dump = tmp / "old.dump"
        run(["pg_dump", "-Fc", "-f", str(old_dump), live])
        took += fill(entries)
        size = services.tree_size()
        say(f"fill: {size:,} entries in {took:.1f} s (not measured here)")
        dump = tmp / "backup.dump"
        t_dump, _ = run(["pg_dump", "-Fc", "-f", str(dump), live])
        say(f"backup: pg_dump -Fc {t_dump:.1f} s, {dump.stat().st_size / 1e6:.0f} MB")
        guard_cost(size)
        bundle = tmp / "last.zip"
        t0 = time.perf_counter()
        export.build(bundle, export_id="last", first=old_size)
        say(f"export of entries {old_size:,} to {size - 1:,}: {time.perf_counter() - t0:.1f} s")
        from django.db import connections

        connections.close_all()

        env = {**os.environ, "DATABASE_URL": server}
        _, out = run(
            [
                "bash",
                str(ROOT / "scripts" / "restore-drill.sh"),
                "--dump",
                str(dump),
                "--python",
                sys.executable,
            ],
            env,
        )
        phases = {}
        for line in out.stdout.splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[2] == "s":
                phases[parts[0]] = float(parts[1])
        verdict = next(line for line in out.stdout.splitlines() if line.startswith("VERDICT"))
        say(f"drill (scripts/restore-drill.sh --dump): {verdict}")
        for name in ("restore", "verify", "replay", "compare"):
            say(f"  {name:8} {phases[name]:7.1f} s")
        say(
            f"  ready in {phases['total']:.1f} s ({size / phases['verify']:,.0f} entries/s verified)"
        )

        # Baselines, same run: a bare pg_restore, and reading every leaf once.
        raw = base.rsplit("/", 1)[0] + "/bench_restore_raw"
        recreate_database(raw)
        try:
            t_raw, _ = run(["pg_restore", "--no-owner", "-d", raw, str(dump)])
            t_read, _ = run(
                ["psql", "-qAt", raw, "-c", "SELECT sum(length(leaf)) FROM ledger_entry"]
            )
            say(f"baseline: bare pg_restore {t_raw:.1f} s; reading every leaf {t_read:.1f} s")
            say(f"  drill restore / bare pg_restore: {phases['restore'] / t_raw:.2f}")

            # The old backup, brought level with what was published.
            recreate_database(raw)
            run(["pg_restore", "--no-owner", "-d", raw, str(old_dump)])
            manage = [sys.executable, str(ROOT / "manage.py"), "ledger"]
            renv = {**os.environ, "DATABASE_URL": raw}
            _, behind = run([*manage, "behind"], renv, ok=(3,))
            say(f"old backup ({old_size:,} entries): {behind.stderr.strip()}")
            t_ingest, _ = run([*manage, "ingest", str(bundle), "--no-progress"], renv)
            t_ok, _ = run([*manage, "behind"], renv)
            say(
                f"ingest of {size - old_size:,} entries from the export: {t_ingest:.1f} s "
                f"({(size - old_size) / t_ingest:,.0f} entries/s); ready again (ledger behind "
                f"{t_ok:.1f} s)"
            )
        finally:
            drop_database(raw)


if __name__ == "__main__":
    main()
