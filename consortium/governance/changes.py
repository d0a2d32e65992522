"""One shape for every change: who signs it, what a client's Idempotency-Key makes of it,
and how its refusals reach a person.

A service (one function per change) names its signer (``acting_signer``, or
``secretariat_signer`` for what only the secretariat signs), takes an
:func:`idempotency` of its actor's key, answers a retry with what the first request did
(``Idempotency.earlier``), and appends its entry under that key's entry id, inside its
own ``transaction.atomic(durable=True)``. Its refusals are :class:`GovernanceError`; the
ledger's are ``LedgerError``. The API turns both into problems; the admin and the
console tell them with :func:`refusals`.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.conf import settings

from consortium.governance.models import Member
from consortium.governance.selectors import acting_for
from consortium.web.idempotency import IDEMPOTENCY_KEY_RE
from ledger.services import Entry, HostedKeyError, Key, LedgerError, hosted_signer

SECRETARIAT_OWNER = "secretariat"


class GovernanceError(Exception):
    """A governance request refused: bad input (``status`` 400) or not allowed (403)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


# --- who signs ---------------------------------------------------------------------------------


def is_secretariat(key: Key | None) -> bool:
    """Is ``key`` the secretariat's (service) key?"""
    return key is not None and key.kind == "service" and key.owner == SECRETARIAT_OWNER


def by_secretariat(author: str) -> bool:
    """Was an entry signed by the secretariat's key (``author`` is its fingerprint)?
    Appliers ask before an entry only the secretariat may make changes anything."""
    return Key.objects.filter(fingerprint=author, kind="service", owner=SECRETARIAT_OWNER).exists()


def secretariat_only(actor, refusal: str) -> None:
    """Refuse (403, saying ``refusal``) anyone but the secretariat; ``actor`` ``None`` is
    the operator at the server's console, who signs with the secretariat key."""
    if actor is not None and acting_for(actor) is not None:
        raise GovernanceError(refusal, 403)


def secretariat_signer():
    """The secretariat's hosted key, which signs what the consortium itself decides."""
    key = Key.objects.filter(
        kind="service", owner=SECRETARIAT_OWNER, revoked_at__isnull=True
    ).first()
    if key is None:
        raise GovernanceError(
            "the consortium has no secretariat key: run `manage.py consortium init`", 409
        )
    try:
        return hosted_signer(key.fingerprint)
    except HostedKeyError as exc:
        raise GovernanceError(str(exc), 409) from exc


def member_hosted_key(code: str) -> Key | None:
    """The hosted key a member's delegates sign with (its newest unrevoked one)."""
    return (
        Key.objects.filter(kind="member", owner=code, custody="hosted", revoked_at__isnull=True)
        .order_by("-registered_in")
        .first()
    )


def member_signer(code: str):
    """The hosted key of a member in good standing (services sign with it when one of its
    delegates acts)."""
    member = Member.objects.get(code=code)
    if member.status != Member.Status.MEMBER:
        raise GovernanceError(f"{code} is {member.status}: it cannot act", 403)
    key = member_hosted_key(code)
    if key is None:
        raise GovernanceError(f"{code} has no hosted key: sign with its own key instead", 403)
    return hosted_signer(key.fingerprint)


def acting_signer(actor):
    """The key ``actor`` signs with, and the member it acts for (``None``: the secretariat).

    The secretariat signs with the secretariat key; a member's signatory with its
    member's hosted key, while the member is in good standing. Anyone else is refused.
    """
    scope = acting_for(actor)
    if scope is None:
        return secretariat_signer(), None
    if scope is False:
        raise GovernanceError("only the secretariat or a member's signatory may do this", 403)
    return member_signer(scope), scope


# --- idempotency -------------------------------------------------------------------------------


def idempotent_entry_id(actor, key: str) -> str:
    """An entry id from a client's Idempotency-Key, scoped to the client."""
    if not isinstance(key, str) or not IDEMPOTENCY_KEY_RE.fullmatch(key):
        raise GovernanceError("Idempotency-Key is 1-64 letters, digits and . _ : -")
    return f"idem-{actor.pk}-{key}"


def replay_of(entry_id: str | None, kind: str, payload: dict, what: str = "request"):
    """The entry an earlier request with this Idempotency-Key made (``None`` if none):
    a retry then answers with what the first request did. The key used for a different
    request (another ``what``) is a conflict."""
    if entry_id is None:
        return None
    done = Entry.objects.filter(entry_id=entry_id).first()
    if done is None:
        return None
    if done.kind != kind or done.payload != payload:
        raise GovernanceError(f"this Idempotency-Key was used for another {what}", 409)
    return done


def keyed_uuid(entry_id: str | None) -> uuid.UUID:
    """A new object's id: derived from the Idempotency-Key's entry id (keyed with the
    server's secret, so that no one can predict it and claim it first), else random."""
    if entry_id is None:
        return uuid.uuid4()
    digest = hmac.new(
        settings.SECRET_KEY.encode(), f"consortium-ledger:{entry_id}".encode(), hashlib.sha256
    ).digest()
    return uuid.UUID(bytes=digest[:16], version=4)


class Idempotency:
    """What a client's Idempotency-Key makes of one change: the id its entry takes
    (``entry_id``, ``None`` without a key), the id of the object it creates, and the
    entry an earlier request with the same key made."""

    def __init__(self, entry_id: str | None):
        self.entry_id = entry_id

    def new_id(self) -> uuid.UUID:
        """The id of the object the change creates: the same on every retry."""
        return keyed_uuid(self.entry_id)

    def earlier(self, kind: str, payload: dict, what: str = "request") -> Entry | None:
        """The entry the first request made, if this is a retry of the same request;
        the key used for another request is a conflict (409)."""
        return replay_of(self.entry_id, kind, payload, what)

    def entry(self) -> Entry | None:
        """The entry made under this key, if any, for a change that knows a retry by
        other means than an equal payload."""
        if self.entry_id is None:
            return None
        return Entry.objects.filter(entry_id=self.entry_id).first()


def idempotency(actor, idempotency_key: str | None) -> Idempotency:
    """The idempotency of ``actor``'s change under ``idempotency_key`` (none without a
    key, or at the console, where ``actor`` is ``None``)."""
    if not idempotency_key or actor is None:
        return Idempotency(None)
    return Idempotency(idempotent_entry_id(actor, idempotency_key))


# --- refusals, told to a person ----------------------------------------------------------------


@contextmanager
def refusals(report: Callable[[str], object]) -> Iterator[None]:
    """Run changes for a person (an admin action or form, a console command): a refusal,
    by governance or by the ledger, ends the block and is told with ``report(message)``.
    If ``report`` gives back an exception (``CommandError``, say), that is raised."""
    try:
        yield
    except (GovernanceError, LedgerError) as exc:
        told = report(str(exc))
        if isinstance(told, BaseException):
            raise told from exc
