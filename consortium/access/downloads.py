"""The download gate: authorisations on the ledger, tokens signed by the log key, and an
access log of every file served and every request refused.

``download.authorized`` (the secretariat key: the gate's decision)
    ``{"token": id, "member", "seat", "checkpoint", "scope", "files": [path], "rule",
    "figures", "expires": RFC 3339}``

A token is ``<payload>.<signature>``, both base64url without padding: the payload is the
JCS object ``{"checkpoint", "exp" (Unix seconds), "files", "member", "scope", "seat",
"tid", "v": 1}``; the signature is Ed25519 by the log key over
``consortium-ledger/download-token/v1\\n`` followed by the payload's bytes, so anyone with
the log's verifier key can check a token offline (``verify_token``).

A token is not a bearer capability: it names the seat that asked, and serving it needs
the request to be authenticated as the user holding that seat, still held, in a role that
may download (``check_holder``). Someone else holding the URL, an observer of the same
member or a delegate of another, gets a 403 (and a line in the access log).

Serving a file (``serve``) checks the token, its holder, the file and the entitlement
again, reads the byte range asked for, and keeps the access log's line; the view only
turns its answer, or its refusal, into HTTP.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import transaction
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from consortium.access import gate
from consortium.access.checkpoints import stored_path
from consortium.access.models import DownloadAuthorization, DownloadEvent, ModelCheckpoint
from consortium.governance import notifications
from consortium.governance.changes import GovernanceError, by_secretariat, secretariat_signer
from consortium.governance.models import ApiToken, Seat
from consortium.governance.selectors import seat_of
from consortium.web import metrics
from ledger import services as ledger
from ledger.core.envelope import canonical, format_time
from ledger.services import Appended, applier, log_signer, projection

projection(DownloadAuthorization)

TOKEN_CONTEXT = b"consortium-ledger/download-token/v1\n"
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{20,4096}\.[A-Za-z0-9_-]{86}")
_RANGE_RE = re.compile(r"bytes=([0-9]*)-([0-9]*)")
# A byte position with more digits than this is past any file (and past the digits
# Python's int() accepts: it is never parsed as a number).
_POSITION_DIGITS = 18
_PAST_ANY_FILE = 10**_POSITION_DIGITS
_UNREAD = object()


class TokenError(ValueError):
    """A download token that cannot be used; ``status`` is the HTTP status that fits,
    ``member`` the token's member once its signature was checked (for the access log)."""

    def __init__(self, message: str, status: int = 403):
        super().__init__(message)
        self.status = status
        self.member = ""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Token:
    tid: str
    member: str
    seat: str
    checkpoint: str
    scope: str
    files: tuple[str, ...]
    expires: datetime


def sign_token(claims: dict) -> str:
    payload = canonical(claims)
    signature = log_signer().signing_key.sign(TOKEN_CONTEXT + payload).signature
    return f"{_b64url(payload)}.{_b64url(signature)}"


def verify_token(token: str, public_key: bytes, now: datetime | None = None) -> Token:
    """Check a token's form, signature (by the log key ``public_key``) and expiry."""
    if not isinstance(token, str) or not _TOKEN_RE.fullmatch(token):
        raise TokenError("malformed download token", 400)
    payload_text, signature_text = token.split(".")
    try:
        payload, signature = _unb64url(payload_text), _unb64url(signature_text)
        VerifyKey(public_key).verify(TOKEN_CONTEXT + payload, signature)
    except (binascii.Error, ValueError, BadSignatureError) as exc:
        raise TokenError("the download token is not signed by this log", 403) from exc
    try:
        claims = json.loads(payload)
        token = Token(
            claims["tid"],
            claims["member"],
            claims["seat"],
            claims["checkpoint"],
            claims["scope"],
            tuple(claims["files"]),
            datetime.fromtimestamp(claims["exp"], UTC),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise TokenError("the download token's claims are malformed", 400) from exc
    if (now or datetime.now(UTC)) >= token.expires:
        raise TokenError("the download token has expired: ask for a new one", 403)
    return token


def check_holder(token: Token, user, seat=None) -> None:
    """Is ``user`` the one the token was issued to: the holder of its seat, still held,
    in a role that may download (a recorder or signatory)? ``seat``: the user's, if
    already read. Raises :class:`TokenError`."""
    seat = seat or seat_of(user)
    if seat is None:
        raise TokenError("you hold no seat: a download token is served to its seat's holder")
    if seat.member_id != token.member:
        raise TokenError("this download token is for another member")
    if str(seat.id) != token.seat:
        raise TokenError(
            "this download token was issued to another seat: only its holder may use it; "
            "ask for your own"
        )
    # recording_for's rule, on the seat already read.
    if seat.role not in (Seat.Role.RECORDER, Seat.Role.SIGNATORY):
        raise TokenError(f"the {seat.role} seat may not download: a recorder or signatory asks")


def log_public_key(seen: gate.Seen | None = None) -> bytes:
    """The log key's public half, which signs download tokens; a log not yet initialised
    has none, and no token can be valid (403, never a 500)."""
    key = gate.log_public_key(seen)
    if key is None:
        raise TokenError("the log has no key yet: no download token is valid")
    return key


def _seat_of(request):
    """The seat the request's user holds: as read with its bearer token when it was
    decided (consortium.governance.auth: for a read, at most API_TOKEN_CACHE_SECONDS ago
    when another process changed it), else asked now."""
    held = getattr(getattr(request, "auth", None), "held_seat", _UNREAD)
    if held is not _UNREAD and isinstance(request.auth, ApiToken):
        return held
    return seat_of(request.user)


def record(
    *,
    request=None,
    member: str = "",
    checkpoint: str = "",
    path: str = "",
    outcome: str,
    reason: str = "",
    token: str = "",
    size: int = 0,
) -> None:
    """Keep one line of the access log (served, or refused and why)."""
    metrics.download_recorded(outcome=outcome, reason=reason, size=size)
    user = getattr(request, "user", None)
    DownloadEvent.objects.create(
        member=member,
        username=getattr(user, "username", "") or "",
        checkpoint=checkpoint,
        path=path[:500],
        outcome=outcome,
        reason=reason[:300],
        token_id=token,
        remote_addr=(request.META.get("REMOTE_ADDR", "") if request is not None else "")[:64],
        bytes_served=size,
    )


# --- applier and service --------------------------------------------------------------------------


@applier("download.authorized")
def apply_authorized(entry: Appended) -> None:
    p = entry.payload
    if not by_secretariat(entry.author):
        return
    DownloadAuthorization.objects.create(
        token_id=p["token"],
        member_id=p["member"],
        seat=p["seat"],
        checkpoint_id=p["checkpoint"],
        scope=p["scope"],
        files=p["files"],
        rule=p["rule"],
        figures=p["figures"],
        expires=p["expires"],
        authorized_in=entry.index,
    )


def download_authorize(
    *,
    actor,
    checkpoint: ModelCheckpoint,
    scope: str = "full_weights",
    files: list[str] | None = None,
    request=None,
    idempotency_key: str | None = None,
) -> tuple[DownloadAuthorization, str]:
    """Ask to download a checkpoint (a member's recorder or signatory). The gate decides;
    an allow is recorded on the ledger and answered with a short-lived token signed by
    the log key. A refusal is kept in the access log and raised (403) with its rule."""
    seat = seat_of(actor)
    # recording_for's rule, on the seat read once.
    if seat is None or seat.role not in (Seat.Role.RECORDER, Seat.Role.SIGNATORY):
        raise GovernanceError("a member's recorder or signatory asks for downloads", 403)
    member = seat.member_id
    wanted = list(files) if files else [f["path"] for f in checkpoint.files]
    known = {f["path"] for f in checkpoint.files}
    unknown = [p for p in wanted if not isinstance(p, str) or p not in known]
    if unknown:
        raise GovernanceError(f"not a file of this checkpoint: {unknown[0]!r}", 404)
    try:
        decision = gate.gated(member, checkpoint.digest, scope).decision
    except ValueError as exc:
        raise GovernanceError(str(exc)) from exc
    if not decision.allow:
        record(
            request=request,
            member=member,
            checkpoint=checkpoint.digest,
            outcome="denied",
            reason=decision.rule,
        )
        notifications.on_download_refused(member, checkpoint, decision.rule)
        raise GovernanceError(f"denied: {decision.rule}", 403)
    tid = secrets.token_hex(16)
    seat = str(seat.id)
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(
        seconds=settings.DOWNLOAD_TOKEN_SECONDS
    )
    payload = {
        "token": tid,
        "member": member,
        "seat": seat,
        "checkpoint": checkpoint.digest,
        "scope": scope,
        "files": sorted(wanted),
        "rule": decision.rule,
        "figures": decision.figures,
        "expires": format_time(expires),
    }
    with transaction.atomic(durable=True):
        ledger.entry_append(
            signer=secretariat_signer(), kind="download.authorized", payload=payload
        )
    token = sign_token(
        {
            "v": 1,
            "tid": tid,
            "member": member,
            "seat": seat,
            "checkpoint": checkpoint.digest,
            "scope": scope,
            "files": sorted(wanted),
            "exp": int(expires.timestamp()),
        }
    )
    return DownloadAuthorization.objects.get(token_id=tid), token


# --- serving a file ---------------------------------------------------------------------------


class Refused(Exception):
    """A request for a file refused: why, the HTTP status that fits, and the headers the
    answer carries (the file's size, on a range not satisfiable)."""

    def __init__(self, message: str, status: int, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


@dataclass(frozen=True)
class Serving:
    """What to serve for one request: bytes ``first`` to ``last`` of the file stored at
    ``stored`` (``checkpoint``/``path`` under the checkpoints' root); ``ranged`` when a
    Range was asked (a partial answer)."""

    checkpoint: str
    path: str
    stored: str
    size: int
    sha256: str
    first: int
    last: int
    ranged: bool

    @property
    def length(self) -> int:
        return max(0, self.last - self.first + 1)


def _decide(request, token: str, path: str) -> tuple[Token, gate.Gated]:
    """The token (signed by this log, unexpired), its holder (``check_holder``), the file,
    and the entitlement as the ledger stands now (one look at it for the request). Raises
    :class:`TokenError`, naming the token's member once its signature is checked."""
    seen = gate.kept.observe()
    tok = verify_token(token, log_public_key(seen))
    try:
        check_holder(tok, request.user, _seat_of(request))
        if path not in tok.files:
            raise TokenError(f"{path} is not a file this token covers", 404)
        checkpoint = gate.gated(tok.member, tok.checkpoint, tok.scope, seen=seen)
        if checkpoint.decision is None or path not in checkpoint.files:
            raise TokenError("no such checkpoint", 404)
        if not checkpoint.decision.allow:
            raise TokenError(f"denied now: {checkpoint.decision.rule}", 403)
    except TokenError as exc:
        exc.member = tok.member
        raise
    return tok, checkpoint


def _span(range_header: str, size: int, range_by_server: bool) -> tuple[tuple | None, str]:
    """The byte range asked for (None: the whole file) and a note for the access log.
    Raises :class:`Refused` (416) unless the web server answers the Range."""
    try:
        return byte_range(range_header, size), ""
    except Refused:
        if not range_by_server:
            raise
        return None, f"; Range {range_header[:60]!r} left to the web server"


def _served(request, tok: Token, checkpoint: gate.Gated, path: str, span, note: str) -> Serving:
    """The access log's line for a file served, and what to serve."""
    size, sha256 = checkpoint.files[path]
    first, last = span if span else (0, size - 1)
    serving = Serving(
        checkpoint=checkpoint.digest,
        path=path,
        stored=stored_path(checkpoint.digest, path),
        size=size,
        sha256=sha256,
        first=first,
        last=last,
        ranged=span is not None,
    )
    record(
        request=request,
        member=tok.member,
        checkpoint=checkpoint.digest,
        path=path,
        outcome="served",
        token=tok.tid,
        size=serving.length,
        reason=(f"{tok.scope}; bytes {first}-{last}" if span else tok.scope) + note,
    )
    return serving


def serve(
    *, request, token: str, path: str, range_header: str, range_by_server: bool = False
) -> Serving:
    """Decide a request for file ``path`` of the download ``token`` authorises: the token
    (signed by this log, unexpired), its holder (``check_holder``), the file, and the
    entitlement checked again now; then the byte range. Every answer is kept in the
    access log; a refusal is raised as :class:`Refused`. With ``range_by_server`` (nginx
    sends the bytes, X-Accel-Redirect) the Range is the web server's to answer: read
    here only for the access log, never refused."""
    try:
        tok, checkpoint = _decide(request, token, path)
    except TokenError as exc:
        record(
            request=request,
            member=exc.member,
            path=path,
            outcome="denied",
            reason=str(exc),
        )
        raise Refused(str(exc), exc.status) from exc
    try:
        span, note = _span(range_header, checkpoint.files[path][0], range_by_server)
    except Refused as exc:
        record(
            request=request,
            member=tok.member,
            checkpoint=checkpoint.digest,
            path=path,
            outcome="denied",
            reason=str(exc),
        )
        raise
    return _served(request, tok, checkpoint, path, span, note)


def serve_if_allowed(
    *, request, token: str, path: str, range_header: str, range_by_server: bool = False
) -> Serving | None:
    """``serve``, for a request that would be served: its access log line kept and what
    to serve returned. None when anything would refuse it, with nothing recorded: the
    caller then goes through ``serve``, which decides again and keeps the refusal."""
    try:
        tok, checkpoint = _decide(request, token, path)
        span, note = _span(range_header, checkpoint.files[path][0], range_by_server)
    except (TokenError, Refused):
        return None
    return _served(request, tok, checkpoint, path, span, note)


def refused_before_serving(*, request, token: str, path: str, reason: str) -> None:
    """Keep in the access log a request refused before it reached ``serve`` (no
    credentials, a token whose seat is gone), under the token's member if it has one."""
    try:
        member = verify_token(token, log_public_key()).member
    except TokenError:
        member = ""
    record(request=request, member=member, path=path, outcome="denied", reason=reason)


def _position(digits: str) -> int:
    """A Range position; one too long to be a real position reads as past any file."""
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= _POSITION_DIGITS else _PAST_ANY_FILE


def byte_range(header: str, size: int) -> tuple[int, int] | None:
    """The (first, last) bytes of a single ``bytes=`` range, or ``None`` for the whole
    file; anything else is refused (416, with the file's size)."""
    if not header:
        return None

    def unsatisfiable(message: str) -> Refused:
        return Refused(message, 416, {"Content-Range": f"bytes */{size}"})

    m = _RANGE_RE.fullmatch(header.strip())
    if m is None or (not m[1] and not m[2]):
        raise unsatisfiable("Range must be a single bytes=first-last, first- or -suffix")
    if m[1]:
        first = _position(m[1])
        last = min(_position(m[2]), size - 1) if m[2] else size - 1
        if m[2] and _position(m[2]) < first:
            raise unsatisfiable("Range ends before it starts")
    else:
        suffix = _position(m[2])
        if suffix == 0:
            raise unsatisfiable("Range asks for no bytes")
        first, last = max(0, size - suffix), size - 1
    if first >= size:
        where = f"at {first}" if first < _PAST_ANY_FILE else "at a position"
        raise unsatisfiable(f"Range starts {where}, past the file's {size} bytes")
    return first, last
