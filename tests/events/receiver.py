"""A partner system's webhook receiver, run as its own process by the tests.

    python -m tests.events.receiver --port P --dir D --public-key BASE64

Verifies each request's Standard Webhooks signature with the log's public key (PyNaCl
only), and appends a line to ``D/received.jsonl``: the id, the status answered, whether
the signature verified, the raw headers and body. Answers 500 while ``D/fail`` holds a
number above zero (decremented at each), after sleeping ``D/delay`` seconds if present."""

from __future__ import annotations

import argparse
import base64
import json
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--public-key", required=True)
    args = parser.parse_args()
    key = VerifyKey(base64.b64decode(args.public_key))
    fail, delay, log = args.dir / "fail", args.dir / "delay", args.dir / "received.jsonl"

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if delay.exists():
                time.sleep(float(delay.read_text()))
            msg_id = self.headers["webhook-id"]
            stamp = self.headers["webhook-timestamp"]
            scheme, _, signature = self.headers["webhook-signature"].partition(",")
            try:
                key.verify(f"{msg_id}.{stamp}.".encode() + body, base64.b64decode(signature))
                verified = scheme == "v1a"
            except BadSignatureError:
                verified = False
            status = 200
            left = int(fail.read_text()) if fail.exists() else 0
            if left > 0:
                fail.write_text(str(left - 1))
                status = 500
            record = {
                "id": msg_id,
                "status": status,
                "verified": verified,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body.decode(),
            }
            with log.open("a") as out:
                out.write(json.dumps(record) + "\n")
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
