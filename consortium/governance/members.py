"""Governance on the ledger: the consortium's founding, its members and the seats
delegates hold.

Entry kinds and their one applier each:

``consortium.founded`` (signed by the log key, once)
    ``{"name", "rules": {...}, "members": [member, ...]}``; founding members are members.
``seat.assigned`` (signed by the secretariat key, or by the member's key)
    ``{"seat": uuid, "member": code or null, "role": role}``
``seat.vacated`` (same signers)
    ``{"seat": uuid, "reason": str}``
``member.applied`` (the secretariat key)
    ``{"member": member}``: an applicant, admitted later by an accepted proposal
    (``member.admit``); applicants neither vote nor act.

A member is ``{"code", "kind", "name", "country", "figures"}``. Services check who may
do what (``authorise``); appliers only apply, so replay rebuilds the same tables.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import uuid
from decimal import Decimal, InvalidOperation

import pycountry
from django.conf import settings
from django.db import transaction

from consortium.governance.models import Consortium, Member, Seat, SeatHolder
from consortium.web.idempotency import IDEMPOTENCY_KEY_RE
from ledger import services as ledger
from ledger import submissions
from ledger.keys import HostedKeyError, hosted_signer, log_signer
from ledger.log import Appended, applier
from ledger.models import Key
from ledger.replay import projection

for model in (Consortium, Member, Seat):
    projection(model)

SLUG_RE = re.compile(r"[a-z0-9][a-z0-9-]{1,31}")
FIGURE_RE = re.compile(r"[0-9]{1,18}(\.[0-9]{1,18})?")
SECRETARIAT_OWNER = "secretariat"
# Until the members adopt others: a simple majority of members, half of them voting.
DEFAULT_RULES = {
    "voting": {"default": {"kind": "simple_majority", "quorum": "0.5"}},
    "default": "default",
}


class GovernanceError(Exception):
    """A governance request refused: bad input (``status`` 400) or not allowed (403)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


# --- validation --------------------------------------------------------------------------


def member_record(
    *,
    code: str,
    kind: str = "nation",
    name: str | None = None,
    country: str | None = None,
    figures: dict | None = None,
) -> dict:
    """A checked member record for a ledger payload."""
    for field, value in (("code", code), ("kind", kind), ("name", name), ("country", country)):
        if value is not None and not isinstance(value, str):
            raise GovernanceError(f"member {field} must be a string")
    if figures is not None and not isinstance(figures, dict):
        raise GovernanceError("member figures must be an object")
    if name is not None and not (0 < len(name) <= 200):
        raise GovernanceError("a member's name is 1-200 characters")
    if kind not in Member.Kind.values:
        raise GovernanceError(f"member kind must be one of {', '.join(Member.Kind.values)}")
    if kind == Member.Kind.NATION:
        nation = pycountry.countries.get(alpha_2=code) if len(code) == 2 else None
        if nation is None or code != code.upper():
            raise GovernanceError(f"{code!r} is not an ISO 3166-1 alpha-2 country code")
        country = country or code
        if country != code:
            raise GovernanceError("a nation's country is its own code")
        name = name or nation.name
    else:
        if not SLUG_RE.fullmatch(code):
            raise GovernanceError("an institution's code is 2-32 lowercase letters, digits and -")
        if (
            not country
            or not re.fullmatch(r"[A-Z]{2}", country)
            or pycountry.countries.get(alpha_2=country) is None
        ):
            raise GovernanceError(f"{country!r} is not an ISO 3166-1 alpha-2 country code")
        if not name:
            raise GovernanceError("an institution needs a name")
    figures = dict(figures or {})
    for key, value in figures.items():
        message = (
            f"figure {key} must be a non-negative integer, or a decimal string of digits "
            "(at most 18 before the point and 18 after)"
        )
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise GovernanceError(message)
        if isinstance(value, str) and not FIGURE_RE.fullmatch(value):
            raise GovernanceError(message)
        if isinstance(value, int) and not 0 <= value < 10**18:
            raise GovernanceError(message)
        try:
            number = Decimal(value)
        except InvalidOperation as exc:
            raise GovernanceError(message) from exc
        if not number.is_finite() or number < 0:
            raise GovernanceError(message)
    return {"code": code, "kind": kind, "name": name, "country": country, "figures": figures}


# --- appliers ------------------------------------------------------------------------------


@applier("consortium.founded")
def apply_founded(entry: Appended) -> None:
    p = entry.payload
    Consortium.objects.create(id=1, name=p["name"], rules=p["rules"], founded_in=entry.index)
    Member.objects.bulk_create(
        Member(
            code=m["code"],
            kind=m["kind"],
            name=m["name"],
            country=m["country"],
            figures=m["figures"],
            status=Member.Status.MEMBER,
            registered_in=entry.index,
            changed_in=entry.index,
        )
        for m in p["members"]
    )


@applier("member.applied")
def apply_member_applied(entry: Appended) -> None:
    m = entry.payload["member"]
    if not _signed_for(entry.author, None) or Member.objects.filter(code=m["code"]).exists():
        return  # only the secretariat records applications, of newcomers
    Member.objects.create(
        code=m["code"],
        kind=m["kind"],
        name=m["name"],
        country=m["country"],
        figures=m["figures"],
        status=Member.Status.APPLICANT,
        registered_in=entry.index,
        changed_in=entry.index,
    )


def _signed_for(author: str, member: str | None) -> bool:
    """Whether ``author`` is the secretariat's key, or a member key of ``member``: the
    keys that change ``member``'s seats (the secretariat's alone for consortium-wide
    seats and applications)."""
    key = Key.objects.filter(fingerprint=author).first()
    if key is None:
        return False
    if key.kind == "service" and key.owner == SECRETARIAT_OWNER:
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


# --- who may act ---------------------------------------------------------------------------


def seat_of(user) -> Seat | None:
    """The active seat ``user`` holds, if any."""
    if user is None or not user.is_authenticated:
        return None
    holder = SeatHolder.objects.select_related("seat", "seat__member").filter(user=user).first()
    if holder is None or not holder.seat.active:
        return None
    return holder.seat


def holds_a_seat(user) -> bool:
    return seat_of(user) is not None


def is_staff_role(user, *roles: str) -> bool:
    seat = seat_of(user)
    return seat is not None and seat.member_id is None and seat.role in roles


def visible_members_of(user) -> set[str] | None:
    """Members whose private records ``user`` may read: ``None`` means all of them."""
    if user.is_superuser or is_staff_role(user, Seat.Role.SECRETARIAT, Seat.Role.AUDITOR):
        return None
    seat = seat_of(user)
    return {seat.member_id} if seat is not None and seat.member_id else set()


def acting_for(user):
    """Whom ``user`` may act for: ``None`` for the secretariat (the consortium, any
    member), a member's code for that member's signatory, ``False`` for anyone else."""
    seat = seat_of(user)
    if seat is not None and seat.member_id is None and seat.role == Seat.Role.SECRETARIAT:
        return None
    if seat is not None and seat.role == Seat.Role.SIGNATORY:
        return seat.member_id
    return False


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


def member_signer(code: str):
    """The hosted key of a member in good standing (services sign with it when one of its
    delegates acts)."""
    member = Member.objects.get(code=code)
    if member.status != Member.Status.MEMBER:
        raise GovernanceError(f"{code} is {member.status}: it cannot act", 403)
    key = (
        Key.objects.filter(kind="member", owner=code, custody="hosted", revoked_at__isnull=True)
        .order_by("-registered_in")
        .first()
    )
    if key is None:
        raise GovernanceError(f"{code} has no hosted key: sign with its own key instead", 403)
    return hosted_signer(key.fingerprint)


def recording_for(user) -> str | None:
    """The member ``user`` records contributions for: its recorder's or signatory's."""
    seat = seat_of(user)
    if seat is not None and seat.role in (Seat.Role.RECORDER, Seat.Role.SIGNATORY):
        return seat.member_id
    return None


def idempotent_entry_id(actor, key: str) -> str:
    """An entry id from a client's Idempotency-Key, scoped to the client."""
    if not isinstance(key, str) or not IDEMPOTENCY_KEY_RE.fullmatch(key):
        raise GovernanceError("Idempotency-Key is 1-64 letters, digits and . _ : -")
    return f"idem-{actor.pk}-{key}"


def replay_of(entry_id: str | None, kind: str, payload: dict):
    """The entry an earlier request with this Idempotency-Key made (``None`` if none):
    a retry then answers with what the first request did. The key used for a different
    request is a conflict."""
    if entry_id is None:
        return None
    from ledger.models import Entry

    done = Entry.objects.filter(entry_id=entry_id).first()
    if done is None:
        return None
    if done.kind != kind or done.payload != payload:
        raise GovernanceError("this Idempotency-Key was used for another request", 409)
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


def _signer_for_seat_change(actor, member: str | None):
    """The secretariat changes any seat; a member's signatory only its own member's."""
    signer, own = acting_signer(actor)
    if own is not None and member != own:
        raise GovernanceError(
            f"a signatory of {own} cannot act for {member or 'the consortium'}", 403
        )
    return signer


def secretariat_signer():
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


# --- services ------------------------------------------------------------------------------


def consortium_found(*, name: str, members: list[dict], rules: dict | None = None) -> Appended:
    """Record the consortium's founding (once), with its founding members, their first
    (hosted) keys and a secretariat key. Initialises the log first if needed."""
    from consortium.governance.proposals import check_rules, check_weights

    if not name or len(name) > 200:
        raise GovernanceError("the consortium needs a name of at most 200 characters")
    rules = check_rules(rules or DEFAULT_RULES)
    check_weights(rules, {m["code"]: m["figures"] for m in members})
    codes = [m["code"] for m in members]
    if not members or len(set(codes)) != len(codes):
        raise GovernanceError("name each founding member once")
    with transaction.atomic(durable=True):
        if Consortium.objects.exists():
            raise GovernanceError("the consortium is already founded", 409)
        if not Key.objects.filter(kind="log").exists():
            ledger.ledger_init()
        log_key = log_signer()
        founded = ledger.entry_append(
            signer=log_key,
            kind="consortium.founded",
            payload={"name": name, "rules": rules, "members": members},
        )
        ledger.key_register(
            signer=log_key, kind="service", owner=SECRETARIAT_OWNER, name=SECRETARIAT_OWNER
        )
        for m in members:
            ledger.key_register(
                signer=log_key, kind="member", owner=m["code"], name=f"member-{m['code']}"
            )
    return founded


def member_apply(*, actor, record: dict, idempotency_key: str | None = None) -> Member:
    """Record an application to join (the secretariat): the applicant is known, with its
    figures, until a proposal admits it. ``actor`` ``None`` is the operator's console."""
    if actor is not None and acting_for(actor) is not None:
        raise GovernanceError("the secretariat records applications", 403)
    fields = {"code", "kind", "name", "country", "figures"}
    if not isinstance(record, dict) or not isinstance(record.get("code"), str):
        raise GovernanceError("the applicant is a member record with a code")
    if set(record) - fields:
        raise GovernanceError(f"unknown field {', '.join(sorted(set(record) - fields))}")
    checked = member_record(
        **{k: record.get(k) for k in ("code", "name", "country", "figures")},
        kind=record.get("kind") or "nation",
    )
    entry_id = idempotent_entry_id(actor, idempotency_key) if idempotency_key else None
    if replay_of(entry_id, "member.applied", {"member": checked}):
        return Member.objects.get(code=checked["code"])
    with transaction.atomic(durable=True):
        if Member.objects.filter(code=checked["code"]).exists():
            raise GovernanceError(f"{checked['code']} is already known", 409)
        entry = ledger.entry_append(
            signer=secretariat_signer(),
            kind="member.applied",
            entry_id=entry_id,
            payload={"member": checked},
        )
        if not Member.objects.filter(code=checked["code"], registered_in=entry.index).exists():
            raise GovernanceError(f"{checked['code']} is already known", 409)
    return Member.objects.get(code=checked["code"])


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
    entry_id = idempotent_entry_id(actor, idempotency_key) if idempotency_key else None
    seat_id = keyed_uuid(entry_id)
    payload = {"seat": str(seat_id), "member": member, "role": role}
    if replay_of(entry_id, "seat.assigned", payload):
        seat = Seat.objects.get(id=seat_id)
        if not SeatHolder.objects.filter(seat=seat, user=user).exists() and seat.active:
            raise GovernanceError("this Idempotency-Key was used for another request", 409)
        return seat
    with transaction.atomic(durable=True):
        # Under the user's row lock, two assignments to one user cannot both pass.
        type(user).objects.select_for_update().filter(pk=user.pk).first()
        if SeatHolder.objects.filter(user=user, seat__vacated_in__isnull=True).exists():
            raise GovernanceError(f"{user} already holds a seat: vacate it first", 409)
        ledger.entry_append(signer=signer, kind="seat.assigned", entry_id=entry_id, payload=payload)
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
    entry_id = idempotent_entry_id(actor, idempotency_key) if idempotency_key else None
    payload = {"seat": str(seat.id), "reason": reason}
    if replay_of(entry_id, "seat.vacated", payload):
        return
    if not seat.active:
        raise GovernanceError("the seat is already vacant", 409)
    with transaction.atomic(durable=True):
        ledger.entry_append(signer=signer, kind="seat.vacated", entry_id=entry_id, payload=payload)
        for holder in SeatHolder.objects.filter(seat=seat).select_related("user"):
            if not holder.user.is_superuser:
                holder.user.is_staff = False
                holder.user.save(update_fields=["is_staff"])
        SeatHolder.objects.filter(seat=seat).delete()


# --- entries members sign themselves (POST /api/v1/ledger/entries) ------------------------


def may_act_for(user, owner: str) -> bool:
    """A user may submit entries signed by ``owner``'s keys if it is ``owner``'s signatory."""
    seat = seat_of(user)
    return (
        seat is not None
        and seat.role == Seat.Role.SIGNATORY
        and seat.member_id == owner
        and seat.member.status == Member.Status.MEMBER
    )


def _member_acting(key, submitter) -> Member:
    if key.kind != "member":
        raise submissions.Refused("seats are assigned with a member's key", 403)
    if not may_act_for(submitter, key.owner):
        raise submissions.Refused(f"you may not act for {key.owner}", 403)
    member = Member.objects.filter(code=key.owner).first()
    if member is None or member.status != Member.Status.MEMBER:
        raise submissions.Refused(f"{key.owner} is not a member in good standing", 403)
    return member


def _seat_id(value) -> uuid.UUID:
    try:
        seat = uuid.UUID(value)
    except (TypeError, ValueError, AttributeError) as exc:
        raise submissions.Refused("seat must be a UUID") from exc
    if str(seat) != value:
        raise submissions.Refused("seat must be a UUID in its canonical form (lowercase, hyphens)")
    return seat


@submissions.accepts("seat.assigned")
def _submitted_seat_assigned(signed, key, submitter) -> None:
    payload = signed.envelope["payload"]
    if set(payload) != {"seat", "member", "role"}:
        raise submissions.Refused("seat.assigned payload is {seat, member, role}")
    member = _member_acting(key, submitter)
    if payload["role"] not in Seat.MEMBER_ROLES:
        raise submissions.Refused(
            f"a member assigns only {', '.join(Seat.MEMBER_ROLES)} seats", 403
        )
    if payload["member"] != member.code:
        raise submissions.Refused(
            f"a key of {member.code} cannot assign seats of {payload['member']}", 403
        )
    if Seat.objects.filter(id=_seat_id(payload["seat"])).exists():
        raise submissions.Refused("that seat already exists", 409)


@submissions.accepts("seat.vacated")
def _submitted_seat_vacated(signed, key, submitter) -> None:
    payload = signed.envelope["payload"]
    if set(payload) != {"seat", "reason"} or not isinstance(payload["reason"], str):
        raise submissions.Refused("seat.vacated payload is {seat, reason}")
    member = _member_acting(key, submitter)
    seat = Seat.objects.filter(id=_seat_id(payload["seat"])).first()
    if seat is None or seat.member_id != member.code:
        raise submissions.Refused(f"no seat of {member.code} with that id", 404)
    if not seat.active:
        raise submissions.Refused("the seat is already vacant", 409)


# --- a member's keys, through its signatory ---------------------------------------------------


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
    entry_id = idempotent_entry_id(actor, idempotency_key) if idempotency_key else None
    if entry_id is not None:
        from ledger.models import Entry

        done = Entry.objects.filter(entry_id=entry_id).first()
        if done is not None:
            # A fresh hosted key differs on every attempt, so a retry is known by its
            # key alone (and, for a key the member holds, by that key).
            new = done.payload.get("key", {})
            same = (
                done.kind == "key.rotated"
                and new.get("owner") == code
                and (
                    public_key is None
                    or new.get("public_key") == base64.b64encode(public_key).decode()
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
            entry_id=entry_id,
        )
    return Key.objects.get(fingerprint=entry.payload["key"]["fingerprint"])


def member_key_revoke(
    *, actor, code: str, fingerprint: str, reason: str, idempotency_key: str | None = None
) -> Key:
    """Revoke one of the member's keys (a compromised external key, say), signed by its
    hosted key. A member keeps at least one valid key: a lost last key is replaced by an
    accepted proposal (action ``key.revoke``)."""
    signer, member = _own_member(actor, code)
    if not isinstance(reason, str) or not 0 < len(reason) <= 300:
        raise GovernanceError("give a reason of at most 300 characters")
    entry_id = idempotent_entry_id(actor, idempotency_key) if idempotency_key else None
    if replay_of(entry_id, "key.revoked", {"fingerprint": fingerprint, "reason": reason}):
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
        ledger.key_revoke(signer=signer, fingerprint=fingerprint, reason=reason, entry_id=entry_id)
    key.refresh_from_db()
    return key
