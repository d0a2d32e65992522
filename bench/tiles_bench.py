#!/usr/bin/env python
"""Tiles benchmark on PostgreSQL: hashes delivered a second by a full tile served from
storage through nginx, against inclusion proofs from the proof API.

    python bench/tiles_bench.py [--entries 100000] [--seconds 10] [--clients 4] [--quick]

Creates (and afterwards drops) a scratch database, fills the log with ``--entries``
signed entries, publishes a checkpoint and writes its tiles (``ledger.tile_store``, as the
task does) to a temporary directory. Then, with the same client processes, each on one
keep-alive connection with a superuser's bearer token, for ``--seconds`` each:

- tiles: random full level-0 tiles (8,192 bytes, 256 hashes), from nginx with the
  project's snippet (deploy/nginx/tiles.conf: auth_request to the application, cached
  per token), two worker processes;
- proofs (the baseline): inclusion proofs of random entries in the checkpoint's tree
  (``GET /api/v1/ledger/proofs/inclusion``, about log2(n) hashes each) from the
  application under gunicorn with two workers, as the other benchmarks serve it;
- for information, the same full tiles from the application's view under gunicorn.

Each is warmed up first (gunicorn's workers import the project on their first request;
nginx asks the application once per token). Every answer is checked (status, size, hash count); anything else fails the run. Prints
requests and hashes a second for both and their ratio; the target is a full tile at
least 20 times faster per hash delivered.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import random
import secrets
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
SCRATCH = "bench_tiles"
TARGET = 20

from downloads_bench import say, scratch_project  # noqa: E402

from tests.steps.nginx import app_server, nginx, readable_dir  # noqa: E402


def fill(entries: int) -> tuple[int, str]:
    """The log filled to ``entries``, a checkpoint, its tiles written; a superuser's token."""
    from django.contrib.auth import get_user_model

    from consortium.governance.models import ApiToken
    from ledger import services, tile_store
    from ledger.checkpoints import publish_checkpoint
    from ledger.services import Draft

    services.ledger_init()
    _, signer = services.key_register(
        signer=services.log_signer(), kind="service", owner="bench", name="bench"
    )
    t0 = time.perf_counter()
    have = services.tree_size()
    while have < entries:
        batch = min(5000, entries - have)
        services.entries_append(
            signer=signer, drafts=[Draft("bench.sample", {"n": have + i}) for i in range(batch)]
        )
        have += batch
    say(f"  filled to {have:,} entries in {time.perf_counter() - t0:.0f} s")
    size = publish_checkpoint().tree_size
    t0 = time.perf_counter()
    written = tile_store.write_tiles()
    say(f"  wrote {written.written:,} tile files in {time.perf_counter() - t0:.1f} s")
    user = get_user_model().objects.create_superuser("bench", password=secrets.token_urlsafe())
    return size, ApiToken.issue(user=user, days=1)[1]


def client(port: int, paths: list[str], token: str, seconds: float, kind: str, out) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Authorization": f"Bearer {token}"}
    rng = random.Random(os.getpid())
    done = hashes = bad = 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        conn.request("GET", rng.choice(paths), headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            bad += 1
        elif kind == "tile":
            bad += len(body) != 8192
            hashes += len(body) // 32
        else:
            hashes += len(json.loads(body)["proof"])
        done += 1
        if resp.will_close:
            conn.close()
    conn.close()
    out.put((done, hashes, bad))


def drive(port: int, paths: list[str], token: str, seconds: float, clients: int, kind: str):
    """(requests a second, hashes a second), all clients together."""
    out = mp.Queue()
    procs = [
        mp.Process(target=client, args=(port, paths, token, seconds, kind, out))
        for _ in range(clients)
    ]
    t0 = time.perf_counter()
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]
    elapsed = time.perf_counter() - t0
    for p in procs:
        p.join()
    bad = sum(r[2] for r in results)
    if bad:
        raise SystemExit(f"{bad} {kind} requests were not answered as expected")
    return sum(r[0] for r in results) / elapsed, sum(r[1] for r in results) / elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--seconds", type=float, default=10.0, help="per measurement (default 10)")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--quick", action="store_true", help="3,000 entries, 2 s, 2 clients")
    args = ap.parse_args()
    if args.quick:
        args.entries, args.seconds, args.clients = 3000, 2.0, 2
    say(f"tiles bench: {args.entries:,} entries, {args.clients} clients, {args.seconds:g} s each")
    tiles_dir = readable_dir("tiles-bench-")
    os.environ["TILES_ROOT"] = str(tiles_dir)
    try:
        with scratch_project(args.database_url, SCRATCH, "tiles-bench-media-"):
            from django.db import connections

            from ledger.core import tiles

            size, token = fill(args.entries)
            connections.close_all()  # the clients and servers are other processes
            env = {**os.environ, "ALLOWED_HOSTS": "127.0.0.1", "DEBUG": "0"}
            full = [
                f"/api/v1/ledger/tlog/{tiles.tile_path(0, n)}" for n in range(size // tiles.WIDTH)
            ]
            rng = random.Random(1)
            proof_paths = [
                f"/api/v1/ledger/proofs/inclusion?index={rng.randrange(size)}&tree_size={size}"
                for _ in range(2000)
            ]
            with app_server(env, workers=2) as app_port:
                # Warm up: each worker imports the project on its first request.
                drive(app_port, proof_paths, token, 2.0, args.clients, "proof")
                proof_rate, proof_hashes = drive(
                    app_port, proof_paths, token, args.seconds, args.clients, "proof"
                )
                view_rate, view_hashes = drive(
                    app_port, full, token, args.seconds, args.clients, "tile"
                )
                with nginx(tiles_dir, app_port, workers=2) as base:
                    port = int(base.rsplit(":", 1)[1])
                    drive(port, full, token, 1.0, args.clients, "tile")  # the reader cached
                    tile_rate, tile_hashes = drive(
                        port, full, token, args.seconds, args.clients, "tile"
                    )
    finally:
        shutil.rmtree(tiles_dir, ignore_errors=True)
    ratio = tile_hashes / proof_hashes
    verdict = "meets" if ratio >= TARGET else "MISSES"
    say(
        f"  inclusion proofs, gunicorn (baseline) {proof_rate:9,.0f} req/s "
        f"{proof_hashes:12,.0f} hashes/s ({proof_hashes / proof_rate:.1f} hashes each)"
    )
    say(
        f"  full tiles, the view, gunicorn        {view_rate:9,.0f} req/s "
        f"{view_hashes:12,.0f} hashes/s (for information: without nginx)"
    )
    say(
        f"  full tiles from disk, nginx           {tile_rate:9,.0f} req/s "
        f"{tile_hashes:12,.0f} hashes/s (256 hashes each)"
    )
    say(f"  per hash delivered: tiles {ratio:,.0f}x the proof API ({verdict} the {TARGET}x target)")


if __name__ == "__main__":
    main()
