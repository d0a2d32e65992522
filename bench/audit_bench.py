#!/usr/bin/env python
"""Audit export benchmark on PostgreSQL: export a million entries, verify them offline.

    python bench/audit_bench.py [--entries 1000000] [--quick]

Creates (and afterwards drops) a scratch database and a temporary media directory.

- fill: a consortium founded, then signed entries appended in bulk (20,000 per
  transaction) to ``--entries``, a checkpoint published every 100,000 entries, and some
  downloads authorised among them (so the report has figures to recompute).
- export: ``consortium.audit.exports.audit_export_build`` for everything (snapshot, report as
  HTML, PDF and CSV, the bundle, storage, the ``audit.exported`` entry): time and size.
- verify: ``ledger.audit.verify`` with the report checks of ``consortium.audit.figures``,
  one worker process per core, as ``python -m consortium.audit.figures verify`` runs it.
- baseline, same run: PyNaCl's raw Ed25519 verify rate on the bundle's own
  (message, signature) pairs, in one process, and on a pool of one process per core.
  Target: verification >= 0.5 x (raw single-process rate x cores).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
SCRATCH = "bench_audit"

from downloads_bench import say, scratch_project, world  # noqa: E402

SAMPLE = 20_000  # signatures timed for the baseline


def fill(w, entries: int) -> float:
    from django.db import transaction

    from consortium.access import checkpoints, downloads
    from ledger import services
    from ledger.services import Draft, log_signer

    src = Path(tempfile.mkdtemp(prefix="bench-audit-cp-"))
    (src / "config.json").write_text("{}")
    cp = checkpoints.checkpoint_publish(actor=None, model=w["model"], name="s", directory=src)
    shutil.rmtree(src)
    _, filler = services.key_register(
        signer=log_signer(), kind="service", owner="filler", name="filler"
    )
    t0 = time.perf_counter()
    batch = 20_000
    while (size := services.tree_size()) < entries:
        n = min(batch, entries - size)
        with transaction.atomic(durable=True):
            services.entries_append(
                signer=filler,
                drafts=[
                    Draft("bench.sample", {"n": size + i, "note": "a sample entry"})
                    for i in range(n)
                ],
            )
        downloads.download_authorize(actor=w["rec"], checkpoint=cp, scope="inference_only")
        if services.tree_size() // 100_000 != size // 100_000:
            services.publish_checkpoint()
    return time.perf_counter() - t0


def _pairs(path: Path, count: int) -> list[tuple[bytes, bytes, bytes]]:
    """(public key, message, signature) of ``count`` entries of the bundle, for the
    baseline: exactly what the verifier checks, without anything else it does."""
    import base64

    from ledger.core.envelope import entry_context
    from ledger.core.leafcheck import TAIL
    from ledger.services import Key, log_origin

    keys = {k.fingerprint: bytes(k.public_key) for k in Key.objects.all()}
    context = entry_context(log_origin())
    out = []
    with zipfile.ZipFile(path) as z, z.open("entries.jsonl") as f:
        for line in f:
            line = line.rstrip(b"\n")
            tail = TAIL.search(line, max(0, len(line) - 256))
            author = line[20:84].decode()
            envelope = line[9 : tail.start(2) - len(b',"index":')]
            out.append((keys[author], context + envelope, base64.b64decode(tail.group(4))))
            if len(out) >= count:
                break
    return out


def _verify_pairs(pairs) -> int:
    from nacl.signing import VerifyKey

    cache: dict[bytes, VerifyKey] = {}
    for key, message, signature in pairs:
        vk = cache.get(key) or cache.setdefault(key, VerifyKey(key))
        vk.verify(message, signature)
    return len(pairs)


def raw_rates(path: Path, cores: int) -> tuple[float, float]:
    import multiprocessing

    pairs = _pairs(path, SAMPLE)
    _verify_pairs(pairs[:500])  # warm up
    t = time.perf_counter()
    _verify_pairs(pairs)
    single = len(pairs) / (time.perf_counter() - t)
    chunks = [pairs[i::cores] for i in range(cores)]
    with multiprocessing.get_context("spawn").Pool(cores) as pool:
        pool.map(_verify_pairs, [c[:100] for c in chunks])  # start the workers
        t = time.perf_counter()
        pool.map(_verify_pairs, chunks)
        pooled = len(pairs) / (time.perf_counter() - t)
    return single, pooled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="50,000 entries.")
    args = parser.parse_args()
    if args.quick:
        args.entries = 50_000
    with scratch_project(args.database_url, SCRATCH, "bench-audit-") as tmp:
        from consortium.audit import exports as audit
        from consortium.audit import figures
        from consortium.web import background
        from ledger import services
        from ledger.audit import verify
        from ledger.core.note import verifier_key
        from ledger.services import log_signer

        cores = os.cpu_count() or 1
        w = world()
        filled = fill(w, args.entries)
        size = services.tree_size()
        say(f"audit benchmark, {cores} cores: {size:,} entries filled in {filled:.0f} s")
        t = time.perf_counter()
        # The build itself, timed where it runs: inside this process (what a Celery worker
        # or the web process's worker thread does with the task), not handed away.
        with background.inline():
            export = audit.audit_export_request(actor=None)
        took = time.perf_counter() - t
        export.refresh_from_db()
        if export.status != "done":
            raise SystemExit(f"the export was not built: {export.status} {export.error}")
        path = tmp / "export.zip"
        with export.file.open("rb") as f, open(path, "wb") as out:
            shutil.copyfileobj(f, out, 1 << 20)
        with zipfile.ZipFile(path) as z:
            raw = sum(i.file_size for i in z.infolist())
        say(
            f"export of {export.entries:,} entries (everything): {took:.1f} s, "
            f"{export.entries / took:,.0f} entries/s; {path.stat().st_size / 1e6:,.1f} MB "
            f"({raw / 1e6:,.1f} MB unpacked)"
        )
        single, pooled = raw_rates(path, cores)
        say(
            f"baseline: PyNaCl Ed25519 verify {single:,.0f}/s in one process; "
            f"{pooled:,.0f}/s on {cores} processes"
        )
        s = log_signer()
        t = time.perf_counter()
        result = verify(path, verifier_key(s.name, s.public_key), extensions=figures.extensions())
        took = time.perf_counter() - t
        if not result.ok:
            raise SystemExit(f"the export does not verify: {result.failures[:5]}")
        rate = export.entries / took
        target = 0.5 * single * cores
        say(
            f"offline verification: {took:.1f} s, {rate:,.0f} entries/s; target >= 0.5 x "
            f"{single:,.0f} x {cores} = {target:,.0f}/s: {'met' if rate >= target else 'MISSED'} "
            f"(ratio to raw x cores {rate / (single * cores):.2f}; to the measured pool "
            f"{rate / pooled:.2f})"
        )


if __name__ == "__main__":
    main()
