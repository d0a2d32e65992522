"""A member's keys, managed by its signatory: rotating its hosted key (to one the member
holds itself, or a fresh hosted one) and revoking a key it no longer trusts. The
entries are the log's own key entries (``key.rotated``, ``key.revoked``); a lost last
key is replaced by an accepted proposal (action ``key.revoke``)."""

from __future__ import annotations

import base64

from django.db import transaction

from consortium.governance.changes import GovernanceError, acting_signer, idempotency
from consortium.governance.validators import is_reason
from ledger import services as ledger
from ledger.services import Key


def _own_member(actor, code: str) -> tuple:
    signer, member = acting_signer(actor)
    if member != code:
        raise GovernanceError(f"only a signatory of {code} manages its keys", 403)
    return signer, member


def member_key_rotate(
    *,
    actor,
    code: str,
    public_key: bytes | None = None,
    name: str = "",
    idempotency_key: str | None = None,
) -> Key:
    """Replace the member's hosted key, signed by it: by a key the member holds itself
    (``public_key``: the new key is external, this server never sees its seed), or by a
    fresh hosted key. The old key signs nothing after the rotation entry."""
    idem = idempotency(actor, idempotency_key)
    done = idem.entry()
    if done is not None:
        # A fresh hosted key differs on every attempt, so a retry is known by its
        # key alone (and, for a key the member holds, by that key).
        new = done.payload.get("key", {})
        same = (
            done.kind == "key.rotated"
            and new.get("owner") == code
            and (
                public_key is None or new.get("public_key") == base64.b64encode(public_key).decode()
            )
        )
        if not same:
            raise GovernanceError("this Idempotency-Key was used for another request", 409)
        return Key.objects.get(fingerprint=new["fingerprint"])
    signer, member = _own_member(actor, code)
    with transaction.atomic(durable=True):
        entry, _ = ledger.key_rotate(
            signer=signer,
            public_key=public_key,
            name=name or f"member-{member}",
            entry_id=idem.entry_id,
        )
    return Key.objects.get(fingerprint=entry.payload["key"]["fingerprint"])


def member_key_revoke(
    *, actor, code: str, fingerprint: str, reason: str, idempotency_key: str | None = None
) -> Key:
    """Revoke one of the member's keys (a compromised external key, say), signed by its
    hosted key. A member keeps at least one valid key: a lost last key is replaced by an
    accepted proposal (action ``key.revoke``)."""
    signer, member = _own_member(actor, code)
    if not is_reason(reason):
        raise GovernanceError("give a reason of at most 300 characters")
    idem = idempotency(actor, idempotency_key)
    if idem.earlier("key.revoked", {"fingerprint": fingerprint, "reason": reason}):
        return Key.objects.get(fingerprint=fingerprint)
    with transaction.atomic(durable=True):
        # Lock every valid key of the member: two revocations cannot both leave one.
        valid = list(
            Key.objects.select_for_update().filter(
                kind="member", owner=member, revoked_at__isnull=True
            )
        )
        key = next((k for k in valid if k.fingerprint == fingerprint), None)
        if key is None:
            raise GovernanceError(f"{member} has no valid key {fingerprint}", 404)
        if len(valid) == 1:
            raise GovernanceError(
                "that is the member's last valid key: rotate it, or propose key.revoke if lost",
                409,
            )
        ledger.key_revoke(
            signer=signer, fingerprint=fingerprint, reason=reason, entry_id=idem.entry_id
        )
    key.refresh_from_db()
    return key
