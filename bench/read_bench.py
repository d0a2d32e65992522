#!/usr/bin/env python
"""Reads under load on PostgreSQL: the checkpoint and inclusion proofs, 64 concurrent
clients, through nginx (deploy/nginx/ledger-reads.conf) in front of gunicorn.

    python bench/read_bench.py [--entries 1000000] [--seconds 10] [--clients 64] [--quick]

Creates (and afterwards drops) a scratch database, fills the log with ``--entries``
signed entries and publishes a checkpoint; a superuser's bearer token reads. The load is
made by ``wrk`` (apt-get install -y wrk), each client on a keep-alive connection with the
token, for ``--seconds`` each:

- baseline: nginx serving a static file of the checkpoint's size, then of a proof's;
- ``GET /api/v1/ledger/checkpoint`` through nginx with the snippet (auth_request cached
  per token, the answer kept 1 s);
- inclusion proofs of random entries in random tree sizes (400,000 URLs, a wrk Lua
  script), through nginx (kept per URL: nearly every one is a miss, answered by the
  application; the hits are counted and printed);
- for information, the same two straight from gunicorn, without nginx.

gunicorn runs ``--workers`` sync workers (default 2 x cores) with persistent database
connections. Prints req/s, p50 and p99 latency and errors (non-2xx/3xx answers and socket
errors) for each. Targets: checkpoint >= 1,500 req/s, proofs >= 800 req/s, p99 < 100 ms,
no errors. The machine's other load counts: run it on a quiet one.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
SCRATCH = "bench_reads"
TARGETS = {"checkpoint": 1500, "proofs": 800}
P99_MS = 100
PROOF_PATHS = 400_000

from downloads_bench import say, scratch_project  # noqa: E402

from tests.steps.nginx import app_server, readable_dir  # noqa: E402
from tests.steps.nginx_reads import reads_nginx  # noqa: E402

# Random paths from a file, one a line: each wrk thread reads it into its own Lua state.
LUA = """\
local paths = {}
for line in io.lines(os.getenv("READ_BENCH_PATHS")) do paths[#paths + 1] = line end
local threads = 0
function setup(thread)
    thread:set("id", threads)
    threads = threads + 1
end
function init(args)
    math.randomseed(os.time() * 64 + id)
end
request = function()
    return wrk.format("GET", paths[math.random(#paths)])
end
"""


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def wrk(url: str, token: str, seconds: float, clients: int, paths: Path | None = None) -> dict:
    """req/s, p50 and p99 in ms and errors of ``clients`` connections on ``url`` (or on
    random lines of ``paths``)."""
    binary = shutil.which("wrk")
    if binary is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    command = [binary, "-t", "2", "-c", str(clients), "-d", f"{seconds:g}s", "--latency"]
    command += ["--timeout", "10s", "-H", f"Authorization: Bearer {token}"]
    env = dict(os.environ)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(LUA)
    try:
        if paths is not None:
            command += ["-s", script.name]
            env["READ_BENCH_PATHS"] = str(paths)
        done = subprocess.run([*command, url], capture_output=True, text=True, env=env, check=False)
    finally:
        os.unlink(script.name)
    out = done.stdout
    if done.returncode != 0 or "Requests/sec" not in out:
        raise SystemExit(f"wrk failed: {out}{done.stderr}")
    latency = dict(re.findall(r"^\s*(50|99)%\s+([\d.]+(?:us|ms|s|m))\s*$", out, re.M))
    if set(latency) != {"50", "99"}:
        raise SystemExit(f"wrk printed no latency distribution for {url}: {out}")
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    return {
        "rate": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50": _ms(latency["50"]),
        "p99": _ms(latency["99"]),
        "errors": (int(non_2xx.group(1)) if non_2xx else 0)
        + (sum(int(n) for n in sockets.groups()) if sockets else 0),
    }


def fill(entries: int) -> tuple[int, str, int]:
    """The log filled to ``entries`` and a checkpoint; a superuser's token; the size of
    the checkpoint's answer."""
    from django.contrib.auth import get_user_model

    from consortium.governance.models import ApiToken
    from ledger import services
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
    note = services.cosigned_checkpoint().note
    user = get_user_model().objects.create_superuser("bench", password=secrets.token_urlsafe())
    return size, ApiToken.issue(user=user, days=1)[1], len(note.encode())


def proof_paths(size: int, count: int = PROOF_PATHS) -> list[str]:
    """Inclusion proofs of random entries in random tree sizes of the latter half of the
    log, as clients holding checkpoints of different ages ask: nearly every URL is a new
    one, which nginx's cache has not kept and the application answers."""
    rng = random.Random(1)
    out = []
    for _ in range(count):
        tree_size = rng.randint(max(1, size // 2), size)
        out.append(
            f"/api/v1/ledger/proofs/inclusion?index={rng.randrange(tree_size)}&tree_size={tree_size}"
        )
    return out


def cache_words(log: Path, since: int) -> tuple[int, dict[str, int]]:
    """The lines nginx's cache log holds now, and the count of each word after line
    ``since`` (HIT, MISS, ...)."""
    time.sleep(1.5)  # the log's buffer is flushed every second
    words = log.read_text().split() if log.exists() else []
    counts: dict[str, int] = {}
    for word in words[since:]:
        counts[word] = counts.get(word, 0) + 1
    return len(words), counts


def line(name: str, r: dict, target: int | None = None) -> str:
    verdict = ""
    if target is not None:
        ok = r["rate"] >= target and r["p99"] < P99_MS and r["errors"] == 0
        verdict = f"  {'meets' if ok else 'MISSES'} >= {target:,}/s, p99 < {P99_MS} ms, 0 errors"
    return (
        f"  {name:<42} {r['rate']:9,.0f} req/s  p50 {r['p50']:7.2f} ms  "
        f"p99 {r['p99']:7.2f} ms  errors {r['errors']}{verdict}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--seconds", type=float, default=10.0, help="per measurement (default 10)")
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2 * (os.cpu_count() or 1))
    ap.add_argument("--quick", action="store_true", help="20,000 entries, 2 s each")
    args = ap.parse_args()
    if args.quick:
        args.entries, args.seconds = 20_000, 2.0
    say(
        f"read bench: {args.entries:,} entries, {args.clients} clients, {args.seconds:g} s "
        f"each, gunicorn {args.workers} workers, nginx 2 workers"
    )
    static = readable_dir("read-bench-static-")
    (static / "baseline").mkdir()
    try:
        with scratch_project(args.database_url, SCRATCH, "read-bench-media-"):
            from django.db import connections

            size, token, checkpoint_bytes = fill(args.entries)
            connections.close_all()  # the servers are other processes
            paths = static / "proof-paths.txt"
            paths.write_text("".join(f"{path}\n" for path in proof_paths(size)))
            paths.chmod(0o644)
            env = {**os.environ, "ALLOWED_HOSTS": "127.0.0.1", "DEBUG": "0", "LOG_LEVEL": "ERROR"}
            results = {}
            with app_server(env, workers=args.workers) as app_port:
                import urllib.request

                proof_url = f"http://127.0.0.1:{app_port}" + paths.read_text().split("\n", 1)[0]
                request = urllib.request.Request(
                    proof_url, headers={"Authorization": f"Bearer {token}"}
                )
                with urllib.request.urlopen(request, timeout=30) as r:  # noqa: S310 - local
                    proof_bytes = len(r.read())
                (static / "baseline" / "checkpoint").write_bytes(b"c" * checkpoint_bytes)
                (static / "baseline" / "proof").write_bytes(b"p" * proof_bytes)
                (static / "log").mkdir()
                (static / "log").chmod(0o777)  # nginx's workers write as nobody
                cache_log = static / "log" / "cache.log"
                with reads_nginx(app_port, static, workers=2, cache_log=cache_log) as port:
                    base = f"http://127.0.0.1:{port}"
                    # Warm up: gunicorn's workers import the project; nginx asks once per token.
                    wrk(f"{base}/api/v1/ledger/checkpoint", token, 2, args.clients)
                    wrk(base, token, 2, args.clients, paths)
                    results["static checkpoint"] = wrk(
                        f"{base}/baseline/checkpoint", token, args.seconds, args.clients
                    )
                    results["checkpoint"] = wrk(
                        f"{base}/api/v1/ledger/checkpoint", token, args.seconds, args.clients
                    )
                    results["static proof"] = wrk(
                        f"{base}/baseline/proof", token, args.seconds, args.clients
                    )
                    seen, _ = cache_words(cache_log, 0)
                    results["proofs"] = wrk(base, token, args.seconds, args.clients, paths)
                    _, results["proofs cache"] = cache_words(cache_log, seen)
                app = f"http://127.0.0.1:{app_port}"
                results["checkpoint, gunicorn"] = wrk(
                    f"{app}/api/v1/ledger/checkpoint", token, args.seconds, args.clients
                )
                results["proofs, gunicorn"] = wrk(app, token, args.seconds, args.clients, paths)
    finally:
        shutil.rmtree(static, ignore_errors=True)
    say(f"  checkpoint answer {checkpoint_bytes} bytes, proof answer {proof_bytes} bytes")
    say(
        line(
            f"static file of {checkpoint_bytes} bytes, nginx (baseline)",
            results["static checkpoint"],
        )
    )
    say(line("checkpoint, nginx + gunicorn", results["checkpoint"], TARGETS["checkpoint"]))
    say(line(f"static file of {proof_bytes} bytes, nginx (baseline)", results["static proof"]))
    say(line("inclusion proofs, nginx + gunicorn", results["proofs"], TARGETS["proofs"]))
    kept = results["proofs cache"]
    say(
        "    nginx's cache for those proofs: "
        + ", ".join(f"{word} {count:,}" for word, count in sorted(kept.items()))
        + f" (hits {kept.get('HIT', 0) / max(1, sum(kept.values())):.1%})"
    )
    say(line("checkpoint, gunicorn alone", results["checkpoint, gunicorn"]))
    say(line("inclusion proofs, gunicorn alone", results["proofs, gunicorn"]))


if __name__ == "__main__":
    main()
