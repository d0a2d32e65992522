#!/usr/bin/env python
"""Witness benchmark: add-checkpoint requests a second, the witness on one core.

    python bench/witness_bench.py [--requests 3000] [--clients 4] [--quick]

Starts ``python -m ledger.witness serve`` as a real process pinned to one core (its state
a SQLite file on disk, ``synchronous=FULL``: every cosignature is on disk before its
reply), and client processes pinned to the other core(s). Each client owns one log and
sends a chain of add-checkpoint requests over one keep-alive connection: ``old N``, the
consistency proof from N to N+1, the checkpoint of size N+1 signed by its log. Each
request is answered 200 with a cosignature (checked: anything else fails the run).

Baseline, same run: a bare ``http.server`` (the same ThreadingHTTPServer, HTTP/1.1,
TCP_NODELAY, same core) answering 200 with a cosignature-sized body to the same requests, without
reading them further. Target: >= 500 add-checkpoint requests a second.
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET = 500

BARE = """
import os, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
os.sched_setaffinity(0, {CORE})
REPLY = b"\\xe2\\x80\\x94 witness.example.org/bench " + b"A" * 100 + b"\\n"
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(REPLY)))
        self.end_headers()
        self.wfile.write(REPLY)
    def log_message(self, *a):
        pass
s = ThreadingHTTPServer(("127.0.0.1", 0), H)
s.daemon_threads = True
print(f"listening on http://127.0.0.1:{s.server_address[1]}", flush=True)
s.serve_forever()
"""

WITNESS = (
    "import os, sys; os.sched_setaffinity(0, {CORE}); from ledger.witness.cli import main; "
    "sys.exit(main(sys.argv[1:]))"
)


def say(text: str = "") -> None:
    print(text, flush=True)


def chains(clients: int, requests: int) -> tuple[list[str], list[list[bytes]]]:
    """Per client, its log's ``--log`` option and its add-checkpoint bodies, in order."""
    from tests.steps.witness import TestLog

    logs, bodies = [], []
    for c in range(clients):
        log = TestLog(f"example.org/bench-log-{c}")
        log.grow(requests)
        logs.append(f"{log.origin} {log.vkey}")
        bodies.append([log.body(n, n + 1) for n in range(requests)])
    return logs, bodies


def start(code: str, args: list[str]) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    for line in proc.stdout:
        if line.startswith("listening on http://"):
            return proc, int(line.rsplit(":", 1)[1])
    raise SystemExit("the server did not start")


def client(port: int, bodies: list[bytes], core: set[int], out) -> None:
    os.sched_setaffinity(0, core)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    bad = 0
    for body in bodies:
        conn.request("POST", "/add-checkpoint", body=body)
        resp = conn.getresponse()
        text = resp.read()
        if resp.status != 200 or not text.startswith("\u2014 ".encode()):
            bad += 1
    conn.close()
    out.put(bad)


def drive(port: int, bodies: list[list[bytes]], core: set[int]) -> float:
    """Requests a second, all clients together; every answer must be a cosignature."""
    out = mp.Queue()
    procs = [mp.Process(target=client, args=(port, b, core, out)) for b in bodies]
    t0 = time.perf_counter()
    for p in procs:
        p.start()
    bad = sum(out.get() for _ in procs)
    elapsed = time.perf_counter() - t0
    for p in procs:
        p.join()
    if bad:
        raise SystemExit(f"{bad} requests were not answered 200 with a cosignature")
    return sum(len(b) for b in bodies) / elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=3000, help="per client (default 3000)")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--quick", action="store_true", help="300 requests per client")
    args = ap.parse_args()
    requests = 300 if args.quick else args.requests
    cores = sorted(os.sched_getaffinity(0))
    server_core = {cores[0]}
    client_cores = set(cores[1:]) or server_core
    say(
        f"witness bench: {args.clients} clients x {requests} requests, witness on core "
        f"{cores[0]}, clients on {sorted(client_cores)}"
    )
    logs, bodies = chains(args.clients, requests)

    bare, port = start(BARE.replace("{CORE}", str(server_core)), [])
    try:
        base = drive(port, bodies, client_cores)
    finally:
        bare.terminate()
        bare.wait()

    tmp = Path(
        tempfile.mkdtemp(
            prefix="witness-bench-", dir=ROOT / "var" if (ROOT / "var").is_dir() else None
        )
    )
    key = tmp / "witness.key"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "ledger.witness",
            "keygen",
            "--name",
            "witness.example.org/bench",
            "--out",
            str(key),
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    argv = [
        "serve",
        "--key",
        str(key),
        "--state",
        str(tmp / "state.sqlite"),
        "--listen",
        "127.0.0.1:0",
        "--rate-limit",
        "0",
        "--quiet",
    ]
    for log in logs:
        argv += ["--log", log]
    witness, port = start(WITNESS.replace("{CORE}", str(server_core)), argv)
    try:
        rate = drive(port, bodies, client_cores)
    finally:
        witness.terminate()
        witness.wait()
        for f in tmp.iterdir():
            f.unlink()
        tmp.rmdir()
    verdict = "meets" if rate >= TARGET else "MISSES"
    say(f"  bare http.server 200 (baseline) {base:10,.0f} req/s")
    say(
        f"  add-checkpoint, cosigned        {rate:10,.0f} req/s  ({rate / base:.0%} of baseline; "
        f"{verdict} the {TARGET}/s target)"
    )


if __name__ == "__main__":
    main()
