#!/usr/bin/env python
"""Load test of a realistic mix, on PostgreSQL, through gunicorn: partner systems polling
the ledger, delegates voting and signing, members downloading ranges, all at once.

    python bench/load_mix.py [--seconds 300] [--quick] [--workers 4]
        [--database-url postgres://postgres@127.0.0.1:5432/postgres]

Loads the demo (``manage.py demo --entries 2000``; --quick: 300) into a scratch database
(made, and dropped afterwards, on the server --database-url or DATABASE_URL names), gives
each member's signatory an API token (``manage.py apitoken create``), and serves the
project with gunicorn (deploy/gunicorn.conf.py when it is there). Then, for --seconds
(--quick: 20), each on its own keep-alive connection and bearer token:

- partner systems (--partners, default 8): follow the entries after the index they have
  (``GET /api/v1/ledger/entries?after=``), fetch the checkpoint and an inclusion proof of
  each new entry in it, then wait half a second;
- delegates (--delegates, default 2): one opens a proposal and each other member votes on
  it; another uploads a document, proposes a data-sharing agreement between two members
  and both sign it;
- members downloading (--downloaders, default 2): Sweden (entitled by the demo's treaty)
  asks the gate for the checkpoint's first file and reads four ranges of 64 KiB (or
  fewer, for a smaller file) with the token.

Every answer is checked (its status); anything unexpected counts as an error. Each
write carries an Idempotency-Key, and a request on a kept-alive connection the server
closed while idle is sent once more on a new one (with that key), as HTTP clients do. Prints, per
route, the requests, the rate, p50 and p99 latency and the errors; then runs
``manage.py ledger verify`` on the database the run left, and fails (exit 1) on any error
or a verification that does not pass.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.steps.nginx import free_port, wait_for_port  # noqa: E402

SCRATCH = "bench_load_mix"
RANGE = 64 * 1024


def say(text: str = "") -> None:
    print(text, flush=True)


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


class Stats:
    """Latencies and errors per route, from every client thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.times: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, int] = defaultdict(int)
        self.samples: dict[str, str] = {}

    def add(self, route: str, seconds: float, ok: bool, detail: str = "") -> None:
        with self.lock:
            self.times[route].append(seconds)
            if not ok:
                self.errors[route] += 1
                self.samples.setdefault(route, detail[:300])


class Client:
    """One keep-alive connection with one bearer token; every request timed and checked."""

    def __init__(self, port: int, token: str, stats: Stats):
        self.port, self.token, self.stats = port, token, stats
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def call(
        self,
        route,
        method,
        path,
        *,
        body=None,
        ctype="application/json",
        expect=(200,),
        headers=None,
    ):
        h = {"Authorization": f"Bearer {self.token}", **(headers or {})}
        if body is not None:
            if not isinstance(body, bytes):
                body = json.dumps(body).encode()
            h["Content-Type"] = ctype
        if method == "POST":
            # As a partner system writes: a retry with the same key is answered as the
            # first was (the API keeps the answer), never acted on twice.
            h["Idempotency-Key"] = uuid.uuid4().hex
        t0 = time.perf_counter()
        for attempt in (1, 2):
            reused = self.conn.sock is not None
            try:
                self.conn.request(method, path, body=body, headers=h)
                resp = self.conn.getresponse()
                data = resp.read()
                break
            except (OSError, http.client.HTTPException) as exc:
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                # A kept-alive connection the server closed while it was idle (gunicorn's
                # keepalive): once more on a new one, as HTTP clients do.
                if attempt == 1 and reused:
                    continue
                self.stats.add(route, time.perf_counter() - t0, False, repr(exc))
                return None, b""
        ok = resp.status in expect
        self.stats.add(route, time.perf_counter() - t0, ok, f"{resp.status} {data[:300]!r}")
        if resp.will_close:
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        return (resp.status if ok else None), data


def partner(client: Client, stop: threading.Event, start_after: int) -> None:
    after = start_after
    rng = random.Random()
    while not stop.is_set():
        status, data = client.call(
            "GET entries", "GET", f"/api/v1/ledger/entries?after={after}&limit=100"
        )
        new = json.loads(data)["entries"] if status else []
        status, data = client.call("GET checkpoint", "GET", "/api/v1/ledger/checkpoint")
        size = int(data.decode().split("\n")[1]) if status else 0
        for e in new[:5]:
            if e["index"] < size:
                client.call(
                    "GET inclusion proof",
                    "GET",
                    f"/api/v1/ledger/proofs/inclusion?index={e['index']}&tree_size={size}",
                )
        if new:
            after = new[-1]["index"]
        stop.wait(0.5 * rng.uniform(0.8, 1.2))


def voter(clients: dict[str, Client], stop: threading.Event) -> None:
    codes = sorted(clients)
    rng = random.Random()
    while not stop.is_set():
        opener = rng.choice(codes)
        deadline = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        action = {
            "type": "member.figures",
            "code": opener,
            "figures": {"population": rng.randint(1, 99)},
        }
        status, data = clients[opener].call(
            "POST proposal",
            "POST",
            "/api/v1/proposals",
            body={"title": "Updated figures", "actions": [action], "deadline": deadline},
            expect=(201,),
        )
        if not status:
            stop.wait(0.5)
            continue
        pid = json.loads(data)["id"]
        for code in codes:
            if stop.is_set():
                return
            clients[code].call(
                "POST vote",
                "POST",
                f"/api/v1/proposals/{pid}/votes",
                body={"choice": rng.choice(["yes", "yes", "no", "abstain"])},
                expect=(201,),
            )


def signer(clients: dict[str, Client], stop: threading.Event) -> None:
    codes = sorted(clients)
    rng = random.Random()
    today = datetime.now(UTC).date().isoformat()
    while not stop.is_set():
        a, b = rng.sample(codes, 2)
        pdf = b"%PDF-1.7 data-sharing agreement " + secrets.token_bytes(16)
        status, data = clients[a].call(
            "POST document",
            "POST",
            "/api/v1/documents?name=dsa.pdf",
            body=pdf,
            ctype="application/pdf",
            expect=(200, 201),
        )
        if not status:
            stop.wait(0.5)
            continue
        terms = {
            "parties": [a, b],
            "effective": {"from": today, "until": None},
            "data_use": {
                "permission": "DUO:0000042",
                "modifiers": ["DUO:0000018"],
                "residency": a,
                "access_mode": "federated",
            },
        }
        status, data = clients[a].call(
            "POST agreement",
            "POST",
            "/api/v1/agreements",
            body={
                "kind": "data_sharing",
                "title": "Data-sharing agreement",
                "terms": terms,
                "document_sha256": hashlib.sha256(pdf).hexdigest(),
            },
            expect=(201,),
        )
        if not status:
            stop.wait(0.5)
            continue
        agreement = json.loads(data)
        sign = {
            "terms_sha256": agreement["terms_sha256"],
            "document_sha256": agreement["document"]["sha256"],
        }
        for code in (a, b):
            clients[code].call(
                "POST signature",
                "POST",
                f"/api/v1/agreements/{agreement['id']}/signatures",
                body=sign,
                expect=(201,),
            )


def downloader(client: Client, stop: threading.Event, digest: str, path: str, size: int) -> None:
    rng = random.Random()
    while not stop.is_set():
        status, data = client.call(
            "POST download authorisation",
            "POST",
            f"/api/v1/checkpoints/{digest}/downloads",
            body={"files": [path]},
            expect=(201,),
        )
        if not status:
            stop.wait(0.5)
            continue
        url = json.loads(data)["files"][path]
        for _ in range(4):
            first = rng.randrange(max(1, size - RANGE))
            last = min(size, first + RANGE) - 1
            client.call(
                "GET download range",
                "GET",
                url,
                headers={"Range": f"bytes={first}-{last}"},
                expect=(206,),
            )


def manage(env: dict, *args: str, capture: bool = False) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
        stderr=subprocess.DEVNULL if capture else None,
        text=True,
    )
    return done.stdout or ""


def recreate(url: str, drop_only: bool = False) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop_only:
            conn.execute(f'CREATE DATABASE "{name}"')


def serve(env: dict, workers: int):
    """gunicorn serving the project with ``env`` (its configuration file when present)."""
    port = free_port()
    args = [sys.executable, "-m", "gunicorn", "consortium.wsgi", "--bind", f"127.0.0.1:{port}"]
    conf = ROOT / "deploy" / "gunicorn.conf.py"
    if conf.exists():
        args += ["--config", str(conf)]
    args += ["--workers", str(workers), "--log-level", "warning"]
    log = open(Path(env["VAR_DIR"]) / "gunicorn.log", "w")  # noqa: SIM115 (the server's)
    server = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    wait_for_port(port, server, "gunicorn")
    return server, port


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/postgres",
    )
    ap.add_argument("--seconds", type=float, default=300.0)
    ap.add_argument("--workers", type=int, default=4, help="gunicorn workers (default 4)")
    ap.add_argument("--partners", type=int, default=8)
    ap.add_argument("--delegates", type=int, default=2)
    ap.add_argument("--downloaders", type=int, default=2)
    ap.add_argument("--entries", type=int, default=2000, help="the demo's sample entries")
    ap.add_argument("--quick", action="store_true", help="20 s on a demo with 300 samples")
    args = ap.parse_args()
    if args.quick:
        args.seconds, args.entries = 20.0, 300
    if not args.database_url.startswith("postgres"):
        raise SystemExit("the load test runs on PostgreSQL: give --database-url postgres://...")
    url = args.database_url.rsplit("/", 1)[0] + "/" + SCRATCH
    var = Path(tempfile.mkdtemp(prefix="load-mix-"))
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "VAR_DIR": str(var),
        "MEDIA_ROOT": str(var / "media"),
        "TILES_ROOT": str(var / "tlog"),
        "SECRET_KEY": secrets.token_urlsafe(50),
        "LEDGER_KEK": secrets.token_bytes(32).hex(),
        "DEBUG": "0",
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "LEDGER_WITNESS_FAIL_OPEN": "1",
        # The notices of proposals and agreements go to the server's log, not to a mail
        # server this machine does not have.
        "EMAIL_URL": "console://",
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "consortium.settings",
    }
    env.pop("CELERY_BROKER_URL", None)
    recreate(url)
    server = None
    try:
        t0 = time.perf_counter()
        manage(env, "migrate", "--noinput", "-v0")
        info = json.loads(
            manage(env, "demo", "--entries", str(args.entries), "--json", capture=True)
        )
        tokens = {
            code: manage(
                env, "apitoken", "create", "--user", user, "--name", "load", capture=True
            ).strip()
            for code, user in info["delegates"].items()
        }
        say(
            f"load mix: demo loaded in {time.perf_counter() - t0:.0f} s; "
            f"{args.partners} partner systems, {args.delegates} delegates' loops, "
            f"{args.downloaders} downloaders, {args.seconds:g} s, gunicorn {args.workers} workers"
        )
        server, port = serve(env, args.workers)
        stats = Stats()
        checkpoint = info["checkpoint"]
        entitled = info["entitled"]
        probe = Client(port, tokens[entitled], stats)
        status, data = probe.call("GET checkpoint (warm-up)", "GET", "/api/v1/ledger/checkpoint")
        if not status:
            raise SystemExit(f"the server does not answer: {data[:300]!r}")
        start_after = int(data.decode().split("\n")[1]) - 1
        cp = json.loads(
            probe.call("warm-up", "GET", f"/api/v1/checkpoints/{checkpoint['digest']}")[1]
        )
        first = next(f for f in cp["files"] if f["size"] > 0)
        stats = Stats()  # the warm-up does not count
        stop = threading.Event()
        threads = []
        partner_tokens = list(tokens.values())
        for i in range(args.partners):
            c = Client(port, partner_tokens[i % len(partner_tokens)], stats)
            threads.append(threading.Thread(target=partner, args=(c, stop, start_after)))
        for i in range(args.delegates):
            clients = {code: Client(port, t, stats) for code, t in tokens.items()}
            threads.append(threading.Thread(target=(voter, signer)[i % 2], args=(clients, stop)))
        for _ in range(args.downloaders):
            c = Client(port, tokens[entitled], stats)
            threads.append(
                threading.Thread(
                    target=downloader,
                    args=(c, stop, checkpoint["digest"], first["path"], first["size"]),
                )
            )
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        stop.wait(args.seconds)
        stop.set()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - t0
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)

    total = sum(len(v) for v in stats.times.values())
    errors = sum(stats.errors.values())
    say(f"  {'route':<30} {'requests':>9} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for route in sorted(stats.times):
        t = stats.times[route]
        say(
            f"  {route:<30} {len(t):>9,} {len(t) / elapsed:>8.1f} {pct(t, 0.5) * 1000:>8.1f} "
            f"{pct(t, 0.99) * 1000:>8.1f} {stats.errors[route]:>7}"
        )
    say(
        f"  all: {total:,} requests in {elapsed:.0f} s, {total / elapsed:.1f} req/s, {errors} errors"
    )
    for route, detail in sorted(stats.samples.items()):
        say(f"    first error of {route}: {detail}")
    t0 = time.perf_counter()
    verify = subprocess.run(
        [sys.executable, "manage.py", "ledger", "verify", "--no-progress"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    say(
        f"  ledger verify afterwards: {'passes' if verify.returncode == 0 else 'FAILS'} "
        f"in {time.perf_counter() - t0:.1f} s"
    )
    if verify.returncode != 0:
        say(verify.stdout[-2000:])
    if os.environ.get("LOAD_MIX_KEEP"):
        say(f"  kept: {var} (the server's log: gunicorn.log) and the database {SCRATCH}")
    else:
        recreate(url, drop_only=True)
        shutil.rmtree(var, ignore_errors=True)
    return 0 if errors == 0 and verify.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
