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

from consortium.access.entitlements import entitlement
from consortium.access.models import DownloadAuthorization, DownloadEvent, ModelCheckpoint
from consortium.governance.members import (
    GovernanceError,
    recording_for,
    seat_of,
    secretariat_signer,
)
from ledger import services as ledger
from ledger.core.envelope import canonical, format_time
from ledger.keys import log_signer
from ledger.log import Appended, applier
from ledger.models import Key
from ledger.replay import projection

projection(DownloadAuthorization)

TOKEN_CONTEXT = b"consortium-ledger/download-token/v1\n"
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{20,4096}\.[A-Za-z0-9_-]{86}")


class TokenError(ValueError):
    """A download token that cannot be used; ``status`` is the HTTP status that fits."""

    def __init__(self, message: str, status: int = 403):
        super().__init__(message)
        self.status = status


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


def check_holder(token: Token, user) -> None:
    """Is ``user`` the one the token was issued to: the holder of its seat, still held,
    in a role that may download (a recorder or signatory)? Raises :class:`TokenError`."""
    seat = seat_of(user)
    if seat is None:
        raise TokenError("you hold no seat: a download token is served to its seat's holder")
    if seat.member_id != token.member:
        raise TokenError("this download token is for another member")
    if str(seat.id) != token.seat:
        raise TokenError(
            "this download token was issued to another seat: only its holder may use it; "
            "ask for your own"
        )
    if recording_for(user) is None:
        raise TokenError(f"the {seat.role} seat may not download: a recorder or signatory asks")


def log_public_key() -> bytes:
    return bytes(Key.objects.get(kind=Key.Kind.LOG, revoked_at__isnull=True).public_key)


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
    if not Key.objects.filter(
        fingerprint=entry.author, kind="service", owner="secretariat"
    ).exists():
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
    member = recording_for(actor)
    if member is None:
        raise GovernanceError("a member's recorder or signatory asks for downloads", 403)
    wanted = list(files) if files else [f["path"] for f in checkpoint.files]
    known = {f["path"] for f in checkpoint.files}
    unknown = [p for p in wanted if not isinstance(p, str) or p not in known]
    if unknown:
        raise GovernanceError(f"not a file of this checkpoint: {unknown[0]!r}", 404)
    try:
        decision = entitlement(member, checkpoint, scope)
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
        raise GovernanceError(f"denied: {decision.rule}", 403)
    tid = secrets.token_hex(16)
    seat = str(seat_of(actor).id)
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
