"""Entries signed by their authors' own keys, submitted through the API.

A member whose key is ``external`` signs envelopes on its own systems and submits them
(``POST /api/v1/ledger/entries``). The log checks the envelope and the signature under
the registered key, then asks the handler registered for the entry's kind whether this
author, submitted by this user, may make this entry, then appends it through the same
path as every other write. Kinds without a handler cannot be submitted.

The log core knows nothing of the domain: apps register handlers, and the project
says (``LEDGER_ACTOR_CHECK``) whether a user may act for a key's owner.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.db import transaction
from django.utils.module_loading import import_string
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from ledger import log
from ledger.core.envelope import (
    EnvelopeError,
    EnvelopeTooLarge,
    SignedEnvelope,
    canonical,
    check_envelope,
    check_envelope_size,
    decode_signature,
    parse_time,
    signing_message,
)
from ledger.errors import EntryTooLarge, IdempotencyConflict, LedgerError, LogBehind
from ledger.keys import log_origin
from ledger.log import Appended
from ledger.models import Entry, Key


def signed_envelope_from_client(envelope: dict, signature: bytes) -> SignedEnvelope:
    """Check an envelope a client signed itself; verify it under the author's key.

    Whether the key may sign at the index the entry gets is decided under the
    sequence lock, when the entry is appended.
    """
    try:
        check_envelope(envelope)
        data = canonical(envelope)
    except EnvelopeError as exc:
        raise LedgerError(str(exc)) from exc
    try:
        check_envelope_size(data)
    except EnvelopeTooLarge as exc:
        raise EntryTooLarge(str(exc)) from exc
    key = Key.objects.filter(fingerprint=envelope["author"]).first()
    if key is None:
        raise LedgerError(f"author {envelope['author'][:16]}… is not a registered key")
    origin = log_origin()
    try:
        VerifyKey(bytes(key.public_key)).verify(signing_message(data, origin), signature)
    except (BadSignatureError, ValueError) as exc:
        raise LedgerError(
            f"the signature does not verify under the author's key for this log: an entry "
            f"is signed for the log's origin, here {origin!r} (an envelope signed for "
            f"another log, or without the origin, is refused)"
        ) from exc
    return SignedEnvelope(envelope, data, signature, origin)


class Refused(Exception):
    """A submission refused; ``status`` is the HTTP status that fits (400, 403, 409, 413)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


Handler = Callable[[SignedEnvelope, Key, object], None]
_handlers: dict[str, Handler] = {}


def accepts(kind: str) -> Callable[[Handler], Handler]:
    """Register the check for submitted entries of ``kind``: raise :class:`Refused`."""

    def register(fn: Handler) -> Handler:
        _handlers[kind] = fn
        return fn

    return register


_followers: dict[str, Callable[[Appended], None]] = {}


def then(kind: str) -> Callable:
    """Register what follows a submitted entry of ``kind``, in its transaction (more
    entries the server signs, say): called with the entry as appended."""

    def register(fn):
        _followers[kind] = fn
        return fn

    return register


def may_act_for(user, owner: str) -> bool:
    """Whether ``user`` may submit entries signed by keys ``owner`` holds."""
    hook = getattr(settings, "LEDGER_ACTOR_CHECK", None)
    return bool(hook) and import_string(hook)(user, owner)


@dataclass(frozen=True)
class Submitted:
    entry: Appended
    created: bool


def submit(*, envelope, signature: str, submitter) -> Submitted:
    """Check and append a client-signed envelope. Raises :class:`Refused`."""
    if not isinstance(envelope, dict):
        raise Refused("envelope must be a JSON object")
    try:
        sig = decode_signature(signature)
    except EnvelopeError as exc:
        raise Refused(str(exc)) from exc
    try:
        signed = signed_envelope_from_client(envelope, sig)
    except EntryTooLarge as exc:
        raise Refused(str(exc), 413) from exc
    except LedgerError as exc:
        raise Refused(str(exc)) from exc
    handler = _handlers.get(signed.kind)
    if handler is None:
        raise Refused(f"entries of kind {signed.kind} cannot be submitted")
    if signed.entry_id.startswith("idem-"):
        # Reserved for the server's Idempotency-Key ids, which a client must not pre-empt.
        raise Refused("entry ids starting with idem- are reserved")
    if Entry.objects.filter(entry_id=signed.entry_id).exists():
        # A retry: answered by the log (the entry as appended, or a conflict), before the
        # kind's rules, which would now see their own effect ("that seat exists").
        try:
            (entry,) = log.append_signed([signed])
        except IdempotencyConflict as exc:
            raise Refused(str(exc), 409) from exc
        return Submitted(entry, entry.created)
    _check_fresh(signed.envelope["time"])
    key = Key.objects.get(fingerprint=signed.author)
    if key.custody != Key.Custody.EXTERNAL:
        raise Refused("hosted keys sign on the server: act through the services instead", 403)
    try:
        with transaction.atomic():
            # The kind's rules are checked under the sequence lock, in the transaction
            # that appends: nothing can change between the check and the entry.
            log._lock()
            handler(signed, key, submitter)
            (entry,) = log.append_signed([signed])
            if signed.kind in _followers:
                _followers[signed.kind](entry)
    except IdempotencyConflict as exc:
        raise Refused(str(exc), 409) from exc
    except EntryTooLarge as exc:
        raise Refused(str(exc), 413) from exc
    except LogBehind as exc:
        raise Refused(str(exc), 503) from exc
    except LedgerError as exc:
        # Keyring refusals: a revoked key, a key that may not register that key, ...
        raise Refused(str(exc), 403) from exc
    return Submitted(entry, entry.created)


def _check_fresh(signed_at: str) -> None:
    """A new entry must have been signed within ``LEDGER_SUBMISSION_MAX_SKEW`` seconds of
    now: an envelope captured and held back cannot be submitted later (a retry of an
    entry the log holds is answered above, whatever its age)."""
    skew = settings.LEDGER_SUBMISSION_MAX_SKEW
    delta = (datetime.now(UTC) - parse_time(signed_at)).total_seconds()
    if abs(delta) > skew:
        when = "ago" if delta > 0 else "ahead"
        raise Refused(
            f"the envelope's time is {abs(int(delta))} s {when}; new entries are accepted "
            f"within {skew} s of the server's clock: sign it again with the current time"
        )


# --- the log's own kinds: owners managing their keys --------------------------------------


def _owner_checks(key: Key, submitter) -> None:
    # Members manage their keys through the API today; facilities and others will when
    # their owners have seats of their own.
    if key.kind != "member":
        raise Refused(f"{key.kind} keys are not managed through the API", 403)
    if not may_act_for(submitter, key.owner):
        raise Refused(f"you may not act for {key.owner}", 403)


@accepts("key.registered")
@accepts("key.rotated")
def _key_change(signed: SignedEnvelope, key: Key, submitter) -> None:
    _owner_checks(key, submitter)
    desc = signed.envelope["payload"].get("key")
    if isinstance(desc, dict) and desc.get("custody") != Key.Custody.EXTERNAL:
        raise Refused("a key registered by its owner is external: this server holds no seed for it")


@accepts("key.revoked")
def _key_revoked(signed: SignedEnvelope, key: Key, submitter) -> None:
    _owner_checks(key, submitter)
    reason = signed.envelope["payload"].get("reason")
    if not isinstance(reason, str) or not 0 < len(reason) <= 300:
        raise Refused("key.revoked: give a reason of at most 300 characters")
    # An owner never revokes its last valid key: it would lock itself out (a lost key is
    # replaced by other means; a key to retire is rotated instead).
    revoked = signed.envelope["payload"].get("fingerprint")
    others = Key.objects.filter(kind=key.kind, owner=key.owner, revoked_at__isnull=True).exclude(
        fingerprint=revoked
    )
    if not others.exists():
        raise Refused("that is the owner's last valid key: rotate it instead", 409)
