"""The real processes of the events tests: the ASGI events server, an SSE client, and a
webhook receiver that verifies each delivery and records it."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
from pathlib import Path

from tests.steps.ledger import child_env
from tests.steps.nginx import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]


class EventsServer:
    """``uvicorn consortium.asgi:application`` on a port of its own, as deployed."""

    def __init__(self, **env: str):
        self.port = free_port()
        self.env = {
            **child_env(),
            "ALLOWED_HOSTS": "127.0.0.1",
            "LEDGER_EVENTS_KEEPALIVE_SECONDS": "1",
            "LOG_LEVEL": "WARNING",
            **env,
        }
        self.proc: subprocess.Popen | None = None

    def start(self) -> EventsServer:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "consortium.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        wait_for_port(self.port, self.proc, "the events server")
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


class Stream:
    """An SSE client over a plain HTTP connection: the events as dicts, comments skipped."""

    def __init__(self, port: int, query: str = "", headers: dict | None = None, timeout=20):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        self.conn.request(
            "GET",
            "/api/v1/ledger/events" + query,
            headers={"Accept": "text/event-stream", **(headers or {})},
        )
        self.response = self.conn.getresponse()
        self.comments = 0

    @property
    def status(self) -> int:
        return self.response.status

    def next(self) -> dict:
        """The next message (``{}`` fields as sent: id, event, data, retry)."""
        message: dict = {}
        while True:
            line = self.response.readline()
            if not line:
                raise EOFError("the stream ended")
            line = line.decode().rstrip("\n")
            if line == "":
                if message:
                    return message
                continue
            if line.startswith(":"):
                self.comments += 1
                continue
            name, _, value = line.partition(":")
            message[name] = value[1:] if value.startswith(" ") else value

    def next_event(self) -> dict:
        """The next message that carries data (an entry)."""
        while True:
            message = self.next()
            if "data" in message:
                return message

    def close(self) -> None:
        self.conn.close()


def entry_of(message: dict) -> dict:
    return json.loads(message["data"])


class Receiver:
    """tests/events/receiver.py as its own process, on a port it keeps across restarts."""

    def __init__(self, directory: Path, public_key: bytes):
        import base64

        self.dir = directory
        self.port = free_port()
        self.key = base64.b64encode(public_key).decode()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/ledger"

    def start(self) -> Receiver:
        self.proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "tests.events.receiver"),
                *("--port", str(self.port), "--dir", str(self.dir), "--public-key", self.key),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        wait_for_port(self.port, self.proc, "the receiver")
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None

    def received(self) -> list[dict]:
        path = self.dir / "received.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line]

    def delivered(self) -> list[dict]:
        """The requests answered 2xx, in the order they arrived."""
        return [r for r in self.received() if r["status"] == 200]


class Celery:
    """A Celery worker (or beat) process on the broker, with ``env``."""

    def __init__(self, env: dict, *args: str):
        self.env, self.args = env, args
        self.proc: subprocess.Popen | None = None

    def start(self) -> Celery:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "consortium", *self.args],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return self

    def stop(self, kill: bool = False) -> None:
        if self.proc is not None and self.proc.poll() is None:
            (self.proc.kill if kill else self.proc.terminate)()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


WORKER = ("worker", "--pool=solo", "--loglevel=WARNING", "--without-heartbeat")
WORKER += ("--without-gossip", "--without-mingle")
