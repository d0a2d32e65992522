"""The witness over HTTP: ``POST /add-checkpoint`` and ``GET /<origin hash>/checkpoint``.

Standard library ``http.server`` with a thread per connection and HTTP/1.1 keep-alive, as
tlog-witness asks of witnesses. Bodies over 16 KiB are refused (413) before they are read;
each client address has a token bucket (429 with ``Retry-After`` when it is empty).
"""

from __future__ import annotations

import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ledger.witness.protocol import MAX_BODY, Reply, Witness

_CHECKPOINT_PATH = re.compile(r"/([0-9a-f]{64})/checkpoint")


class RateLimit:
    """Per client address, ``rate`` requests a second with bursts of as many (0: off)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow(self, client: str) -> bool:
        if self.rate <= 0:
            return True
        now = time.monotonic()
        with self._lock:
            burst = max(self.rate, 1.0)
            tokens, then = self._buckets.get(client, (burst, now))
            tokens = min(burst, tokens + (now - then) * self.rate)
            if len(self._buckets) > 100_000:  # forget idle clients rather than grow
                self._buckets.clear()
            if tokens < 1:
                self._buckets[client] = (tokens, now)
                return False
            self._buckets[client] = (tokens - 1, now)
            return True


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    # Headers and body go out in two writes; with Nagle's algorithm the second waits
    # for the client's delayed ACK (40 ms) on every keep-alive request.
    disable_nagle_algorithm = True
    server_version = "ledger-witness"
    witness: Witness
    limit: RateLimit

    def _send(self, reply: Reply) -> None:
        data = reply.body.encode()
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _limited(self) -> bool:
        if self.limit.allow(self.client_address[0]):
            return False
        self._drain()
        self._send(Reply(429, "too many requests\n", headers={"Retry-After": "1"}))
        return True

    def _drain(self) -> None:
        # Read what the client sent, so the connection can serve its next request;
        # a body too large to drain cheaply closes the connection instead.
        length = self._length()
        if length is None or length > MAX_BODY:
            self.close_connection = True
        elif length:
            self.rfile.read(length)

    def _length(self) -> int | None:
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            return None
        return length if length >= 0 else None

    def do_POST(self) -> None:
        if self._limited():
            return
        if self.path != "/add-checkpoint":
            self._drain()
            self._send(Reply(404, "not found\n"))
            return
        length = self._length()
        if length is None:
            self.close_connection = True
            self._send(Reply(400, "malformed request: a Content-Length is required\n"))
            return
        if length > MAX_BODY:
            self.close_connection = True
            self._send(Reply(413, f"the body is larger than {MAX_BODY} bytes\n"))
            return
        self._send(self.witness.add_checkpoint(self.rfile.read(length)))

    def do_GET(self) -> None:
        if self._limited():
            return
        match = _CHECKPOINT_PATH.fullmatch(self.path)
        if match is None:
            self._send(Reply(404, "not found\n"))
            return
        self._send(self.witness.checkpoint(match.group(1)))

    def log_message(self, format: str, *args) -> None:
        sys.stderr.write(f"{self.address_string()} {format % args}\n")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


def make_server(host: str, port: int, witness: Witness, rate: float, quiet: bool) -> Server:
    """A server bound to ``host:port`` (port 0: any free port), not yet serving."""
    attrs = {"witness": witness, "limit": RateLimit(rate)}
    if quiet:
        attrs["log_message"] = lambda self, format, *args: None
    handler = type("WitnessHandler", (Handler,), attrs)
    return Server((host, port), handler)
