"""A test log (signed with ledger.core.note, proved with ledger.core.merkle) and witnesses
run as real processes, with Django made unimportable."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from nacl.signing import SigningKey

from ledger.core import merkle
from ledger.core.note import Checkpoint, Signer, b64, sign_note

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable


class TestLog:
    """A log of ``leaf <i>`` entries whose checkpoints and proofs the tests send."""

    __test__ = False

    def __init__(self, origin: str = "example.org/test-log", key_name: str | None = None):
        self.origin = origin
        self.signer = Signer(key_name or origin, SigningKey.generate())
        self.stored: list[bytes] = []
        self.builder = merkle.TreeBuilder()

    @property
    def vkey(self) -> str:
        return self.signer.verifier_key()

    def grow(self, size: int) -> None:
        while self.builder.size < size:
            leaf = merkle.leaf_hash(f"leaf {self.builder.size}".encode())
            self.stored.extend(self.builder.push(leaf))

    def _read(self, indexes):
        return [self.stored[i] for i in indexes]

    def root(self, size: int) -> bytes:
        self.grow(size)
        return merkle.tree_root(size, self._read)

    def checkpoint(self, size: int, root: bytes | None = None, signer: Signer | None = None):
        body = Checkpoint(self.origin, size, self.root(size) if root is None else root).body()
        return sign_note(body, signer or self.signer)

    def proof(self, old: int, new: int) -> list[bytes]:
        if old == 0 or old == new:
            return []
        self.grow(new)
        return merkle.prove_consistency(old, new, self._read)

    def body(self, old: int, size: int, note: str | None = None, proof=None) -> bytes:
        proof = self.proof(old, size) if proof is None else proof
        lines = [f"old {old}", *(b64(h) for h in proof)]
        return ("\n".join(lines) + "\n\n" + (note or self.checkpoint(size))).encode()


def _without_django(argv: list[str]) -> str:
    return (
        "import sys; sys.modules['django'] = None; from ledger.witness.cli import main; "
        f"sys.exit(main({argv!r}))"
    )


def run_witness(*argv: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m ledger.witness <argv>`` run to its end, Django unimportable."""
    return subprocess.run(
        [PYTHON, "-c", _without_django(list(argv))],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
        timeout=timeout,
    )


def start_witness(
    tmp: Path,
    key,
    logs: list[str],
    *,
    state: Path | None = None,
    rate=0,
    port: int = 0,
    extra=(),
):
    """``python -m ledger.witness serve`` in a child with ``sys.modules['django'] = None``
    (on ``port``, or any free port)."""
    argv = ["serve", "--state", str(state or tmp / "state.sqlite")]
    for k in key if isinstance(key, list) else [key]:
        argv += ["--key", str(k)]
    for log in logs:
        argv += ["--log", log]
    argv += ["--listen", f"127.0.0.1:{port}", "--rate-limit", str(rate), "--quiet", *extra]
    code = _without_django(argv)
    proc = subprocess.Popen(
        [PYTHON, "-c", code],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    for line in proc.stdout:
        if line.startswith("listening on http://"):
            host, port = line.split("//", 1)[1].strip().rsplit(":", 1)
            return proc, (host, int(port))
    proc.wait(10)
    raise RuntimeError(f"the witness did not start: {proc.stderr.read()}")


def stop(proc: subprocess.Popen, sig=signal.SIGTERM) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, sig)
    proc.wait(10)
    proc.stdout.close()
    proc.stderr.close()


def keygen(tmp: Path, name: str = "witness.example.org/w1", algorithm: str = "ed25519"):
    """A key file made by ``python -m ledger.witness keygen``, and the verifier key printed."""
    key = tmp / f"witness-{algorithm}.key"
    done = subprocess.run(
        [
            PYTHON,
            "-m",
            "ledger.witness",
            "keygen",
            "--name",
            name,
            "--out",
            str(key),
            "--algorithm",
            algorithm,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return key, done.stdout.strip()


def request(addr, method: str, path: str, body: bytes | None = None, headers=None):
    """One request on a fresh connection: (status, content type, body text, headers)."""
    conn = http.client.HTTPConnection(*addr, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.getheader("Content-Type"), resp.read().decode(), resp
    finally:
        conn.close()


def add(addr, body: bytes):
    return request(addr, "POST", "/add-checkpoint", body)


class TileServer:
    """A log's C2SP tlog-tiles prefix (``<url>/checkpoint``, ``<url>/tile/...``) served over
    real HTTP from ``files`` (path -> bytes, changed by the test at will), to clients with
    the bearer ``token``; every path asked is kept in ``asked``."""

    def __init__(self, files: dict[str, bytes], token: str):
        self.files, self.token, self.asked = files, token, []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                path = self.path.removeprefix("/tlog/")
                outer.asked.append(path)
                if self.headers.get("Authorization") != f"Bearer {outer.token}":
                    status, body = 401, b"a bearer token is required"
                elif path in outer.files:
                    status, body = 200, outer.files[path]
                else:
                    status, body = 404, b"not found"
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/tlog"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
