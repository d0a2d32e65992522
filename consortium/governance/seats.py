"""Seats: the roles delegates hold, for a member or consortium-wide.

Entry kinds and their one applier each:

``seat.assigned`` (signed by the secretariat key, or by the member's key)
    ``{"seat": uuid, "member": code or null, "role": role}``
``seat.vacated`` (same signers)
    ``{"seat": uuid, "reason": str}``

The ledger names seats, never people: who holds a seat (``SeatHolder``) is local
account data, written by the services beside the entry.
"""

from __future__ import annotations

import uuid

from django.db import transaction

from consortium.governance.auth import forget_recent_reads
from consortium.governance.changes import (
    GovernanceError,
    acting_signer,
    idempotency,
    is_secretariat,
    secretariat_signer,
)
from consortium.governance.models import Member, Seat, SeatHolder
from consortium.governance.selectors import may_act_for
from ledger import services as ledger
from ledger.services import Appended, Key, applier, projection

projection(Seat)


# --- appliers ------------------------------------------------------------------------------


def _signed_for(author: str, member: str | None) -> bool:
    """Whether ``author`` is the secretariat's key, or a member key of ``member``: the
    keys that change ``member``'s seats (the secretariat's alone for consortium-wide
    seats)."""
    key = Key.objects.filter(fingerprint=author).first()
    if key is None:
        return False
    if is_secretariat(key):
        return True
    return key.kind == "member" and member is not None and key.owner == member


@applier("seat.assigned")
def apply_seat_assigned(entry: Appended) -> None:
    p = entry.payload
    if not _signed_for(entry.author, p["member"]):
        return  # on the record, without effect
    Seat.objects.create(
        id=uuid.UUID(p["seat"]), member_id=p["member"], role=p["role"], assigned_in=entry.index
    )


@applier("seat.vacated")
def apply_seat_vacated(entry: Appended) -> None:
    seat = Seat.objects.filter(id=uuid.UUID(entry.payload["seat"]), vacated_in__isnull=True).first()
    if seat is None or not _signed_for(entry.author, seat.member_id):
        return
    Seat.objects.filter(id=seat.id).update(vacated_in=entry.index)
    forget_recent_reads()  # its holder's tokens read no more (an update sends no signal)


# --- services ------------------------------------------------------------------------------


def _signer_for_seat_change(actor, member: str | None):
    """The secretariat changes any seat; a member's signatory only its own member's."""
    signer, own = acting_signer(actor)
    if own is not None and member != own:
        raise GovernanceError(
            f"a signatory of {own} cannot act for {member or 'the consortium'}", 403
        )
    return signer


def seat_assign(
    *, actor, user, role: str, member: str | None = None, idempotency_key: str | None = None
) -> Seat:
    """Give ``user`` a seat: a role for ``member``, or a consortium-wide role.

    ``actor`` is the user asking; ``None`` is the operator at the server's console
    (management commands), who signs with the secretariat key.
    """
    if role not in Seat.Role.values:
        raise GovernanceError(f"role must be one of {', '.join(Seat.Role.values)}")
    if role in Seat.STAFF_ROLES and member is not None:
        raise GovernanceError(f"{role} is a consortium-wide role: give no member")
    if role in Seat.MEMBER_ROLES:
        target = Member.objects.filter(code=member).first() if member else None
        if target is None:
            raise GovernanceError(f"no member {member!r}")
    signer = secretariat_signer() if actor is None else _signer_for_seat_change(actor, member)
    idem = idempotency(actor, idempotency_key)
    seat_id = idem.new_id()
    payload = {"seat": str(seat_id), "member": member, "role": role}
    if idem.earlier("seat.assigned", payload):
        seat = Seat.objects.get(id=seat_id)
        if not SeatHolder.objects.filter(seat=seat, user=user).exists() and seat.active:
            raise GovernanceError("this Idempotency-Key was used for another request", 409)
        return seat
    with transaction.atomic(durable=True):
        # Under the user's row lock, two assignments to one user cannot both pass.
        type(user).objects.select_for_update().filter(pk=user.pk).first()
        if SeatHolder.objects.filter(user=user, seat__vacated_in__isnull=True).exists():
            raise GovernanceError(f"{user} already holds a seat: vacate it first", 409)
        ledger.entry_append(
            signer=signer, kind="seat.assigned", entry_id=idem.entry_id, payload=payload
        )
        seat = Seat.objects.get(id=seat_id)
        SeatHolder.objects.update_or_create(user=user, defaults={"seat": seat})
        if not user.is_staff:
            # Delegates work in the admin; what they may see there follows their seat.
            user.is_staff = True
            user.save(update_fields=["is_staff"])
    return seat


def seat_vacate(*, actor, seat: Seat, reason: str = "", idempotency_key: str | None = None) -> None:
    """End a seat. The secretariat, or a signatory of the seat's member."""
    signer = _signer_for_seat_change(actor, seat.member_id)
    idem = idempotency(actor, idempotency_key)
    payload = {"seat": str(seat.id), "reason": reason}
    if idem.earlier("seat.vacated", payload):
        return
    if not seat.active:
        raise GovernanceError("the seat is already vacant", 409)
    with transaction.atomic(durable=True):
        ledger.entry_append(
            signer=signer, kind="seat.vacated", entry_id=idem.entry_id, payload=payload
        )
        for holder in SeatHolder.objects.filter(seat=seat).select_related("user"):
            if not holder.user.is_superuser:
                holder.user.is_staff = False
                holder.user.save(update_fields=["is_staff"])
        SeatHolder.objects.filter(seat=seat).delete()


# --- entries members sign themselves (POST /api/v1/ledger/entries) ------------------------


def _member_acting(key, submitter) -> Member:
    if key.kind != "member":
        raise ledger.Refused("seats are assigned with a member's key", 403)
    if not may_act_for(submitter, key.owner):
        raise ledger.Refused(f"you may not act for {key.owner}", 403)
    member = Member.objects.filter(code=key.owner).first()
    if member is None or member.status != Member.Status.MEMBER:
        raise ledger.Refused(f"{key.owner} is not a member in good standing", 403)
    return member


def _seat_id(value) -> uuid.UUID:
    try:
        seat = uuid.UUID(value)
    except (TypeError, ValueError, AttributeError) as exc:
        raise ledger.Refused("seat must be a UUID") from exc
    if str(seat) != value:
        raise ledger.Refused("seat must be a UUID in its canonical form (lowercase, hyphens)")
    return seat


@ledger.accepts("seat.assigned")
def _submitted_seat_assigned(signed, key, submitter) -> None:
    payload = signed.envelope["payload"]
    if set(payload) != {"seat", "member", "role"}:
        raise ledger.Refused("seat.assigned payload is {seat, member, role}")
    member = _member_acting(key, submitter)
    if payload["role"] not in Seat.MEMBER_ROLES:
        raise ledger.Refused(f"a member assigns only {', '.join(Seat.MEMBER_ROLES)} seats", 403)
    if payload["member"] != member.code:
        raise ledger.Refused(
            f"a key of {member.code} cannot assign seats of {payload['member']}", 403
        )
    if Seat.objects.filter(id=_seat_id(payload["seat"])).exists():
        raise ledger.Refused("that seat already exists", 409)


@ledger.accepts("seat.vacated")
def _submitted_seat_vacated(signed, key, submitter) -> None:
    payload = signed.envelope["payload"]
    if set(payload) != {"seat", "reason"} or not isinstance(payload["reason"], str):
        raise ledger.Refused("seat.vacated payload is {seat, reason}")
    member = _member_acting(key, submitter)
    seat = Seat.objects.filter(id=_seat_id(payload["seat"])).first()
    if seat is None or seat.member_id != member.code:
        raise ledger.Refused(f"no seat of {member.code} with that id", 404)
    if not seat.active:
        raise ledger.Refused("the seat is already vacant", 409)
