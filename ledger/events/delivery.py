"""One webhook request: a POST to a partner's URL, connecting only where the witnesses'
egress rule permits (``ledger.cosign.egress``: the host resolved once, every address
checked, the connection made to a checked address), following no redirect."""

from __future__ import annotations

import http.client
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from ledger.cosign import egress

# What is kept of a reply: its status matters, its body only as a hint in the log.
MAX_REPLY = 1024


@dataclass(frozen=True)
class Outcome:
    status: int | None
    error: str
    seconds: float

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def check_url(url: str, *, allow_http: bool) -> None:
    """Raise :class:`~ledger.cosign.egress.EgressRefused` for a URL the server will not
    send to: not https (unless allowed), with user information, a bad port, or a host the
    egress rule refuses without a lookup."""
    schemes = ("https", "http") if allow_http else ("https",)
    try:
        parts = urlsplit(url)
        parts.hostname  # noqa: B018 (raises for a malformed host)
    except ValueError as exc:
        raise egress.EgressRefused(f"{url} is not a URL ({exc})") from exc
    if parts.scheme not in schemes or not parts.hostname:
        raise egress.EgressRefused(f"{url} is not an {' or '.join(schemes)} URL")
    if parts.username is not None or parts.password is not None:
        raise egress.EgressRefused("a URL with user information is not used")
    try:
        parts.port  # noqa: B018 (raises for a bad port)
    except ValueError as exc:
        raise egress.EgressRefused(f"{url}: not a valid port ({exc})") from exc
    egress.check_destination(parts.hostname)


def post(
    url: str, body: bytes, headers: dict[str, str], timeout: float, *, allow_http: bool
) -> Outcome:
    """POST ``body``; the status, or why there was none (never raises for the network).
    The URL is checked again (:func:`check_url`): the settings may have changed since it
    was subscribed."""
    started = time.monotonic()
    try:
        check_url(url, allow_http=allow_http)
    except egress.EgressRefused as exc:
        return Outcome(None, f"EgressRefused: {exc}"[:500], 0.0)
    parts = urlsplit(url)
    cls = egress.PinnedTLSConnection if parts.scheme == "https" else egress.PinnedConnection
    tls = ssl.create_default_context() if parts.scheme == "https" else None
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    conn = cls(parts.hostname, parts.port, timeout=timeout, tls=tls)
    try:
        conn.request("POST", path, body=body, headers=headers)
        resp = conn.getresponse()
        resp.read(MAX_REPLY)
        return Outcome(resp.status, "", time.monotonic() - started)
    except (OSError, http.client.HTTPException, egress.EgressRefused, ValueError) as exc:
        return Outcome(None, f"{type(exc).__name__}: {exc}"[:500], time.monotonic() - started)
    finally:
        conn.close()
