"""Facilities: the computing centres whose accounting is imported, and the tables they keep.

Entry kinds, each with one applier:

``facility.registered`` (the secretariat key)
    ``{"facility": {code, name, operator, country, timezone, default_accelerator,
    partitions, accounts}}``; the log key registers the facility's key beside it.
``facility.updated`` (the facility's key, or the secretariat's)
    ``{"facility": code, "changes": {timezone?, default_accelerator?, partitions?,
    accounts?}}``: the tables the facility keeps (accounts to members, partitions to
    accelerator types).
"""

from __future__ import annotations

import re

from django.db import transaction

from consortium.governance.changes import (
    GovernanceError,
    by_secretariat,
    idempotency,
    is_secretariat,
    member_signer,
    secretariat_only,
    secretariat_signer,
)
from consortium.governance.models import Member
from consortium.governance.selectors import acting_for, recording_for
from consortium.governance.validators import SLUG_RE, TAG_RE
from contributions.common import key_of, zone
from contributions.models import Facility
from contributions.selectors import facility_key
from ledger import services as ledger
from ledger.services import Appended, HostedKeyError, Key, applier, hosted_signer, log_signer

FIELDS = {
    "code",
    "name",
    "operator",
    "country",
    "timezone",
    "default_accelerator",
    "partitions",
    "accounts",
}
CHANGEABLE = {"timezone", "default_accelerator", "partitions", "accounts"}


def _tag(value, path: str) -> str:
    if not isinstance(value, str) or not TAG_RE.fullmatch(value):
        raise GovernanceError(f"{path}: an accelerator type such as h100 or a100_3g.20gb")
    return value


def _partitions(value) -> dict:
    if not isinstance(value, dict):
        raise GovernanceError("partitions: an object {partition: accelerator type}")
    for name, kind in value.items():
        if not name or len(name) > 64 or "|" in name:
            raise GovernanceError("partitions: partition names are 1-64 characters")
        _tag(kind, f"partitions.{name}")
    return value


def _accounts(value) -> dict:
    if not isinstance(value, dict):
        raise GovernanceError("accounts: an object {account: member code}")
    known = set(Member.objects.filter(status=Member.Status.MEMBER).values_list("code", flat=True))
    for account, member in value.items():
        if not account or len(account) > 64 or "|" in account:
            raise GovernanceError("accounts: account names are 1-64 characters, without |")
        if not isinstance(member, str) or member not in known:
            raise GovernanceError(
                f"accounts.{account}: {member!r} is not a member in good standing"
            )
    return value


def facility_record(
    *,
    code,
    name,
    operator,
    country,
    timezone="UTC",
    default_accelerator,
    partitions=None,
    accounts=None,
) -> dict:
    """A checked facility record for a ledger payload."""
    if not isinstance(code, str) or not SLUG_RE.fullmatch(code):
        raise GovernanceError("code: 2-32 lowercase letters, digits and -")
    if not isinstance(name, str) or not 0 < len(name) <= 200:
        raise GovernanceError("name: 1-200 characters")
    if not Member.objects.filter(code=operator).exists():
        raise GovernanceError(f"operator: {operator!r} is not a member")
    if not isinstance(country, str) or not re.fullmatch(r"[A-Z]{2}", country):
        raise GovernanceError("country: an ISO 3166-1 alpha-2 code such as FI")
    return {
        "code": code,
        "name": name,
        "operator": operator,
        "country": country,
        "timezone": zone(timezone, "timezone"),
        "default_accelerator": _tag(default_accelerator, "default_accelerator"),
        "partitions": _partitions(partitions or {}),
        "accounts": _accounts(accounts or {}),
    }


# --- registering --------------------------------------------------------------------------------


def facility_register(
    *, actor, record: dict, public_key: bytes | None = None, idempotency_key: str | None = None
) -> Facility:
    """Register a facility and its key (the secretariat; ``actor`` ``None`` is the
    operator's console). Without ``public_key`` the facility's key is hosted here."""
    secretariat_only(actor, "the secretariat registers facilities")
    if not isinstance(record, dict) or set(record) - FIELDS:
        raise GovernanceError(f"a facility is {{{', '.join(sorted(FIELDS))}}}")
    try:
        record = facility_record(**record)
    except TypeError as exc:
        raise GovernanceError(
            f"a facility needs {', '.join(sorted(FIELDS - {'timezone', 'partitions', 'accounts'}))}"
        ) from exc
    idem = idempotency(actor, idempotency_key)
    if idem.earlier("facility.registered", {"facility": record}):
        return Facility.objects.get(code=record["code"])
    with transaction.atomic(durable=True):
        if Facility.objects.filter(code=record["code"]).exists():
            raise GovernanceError(f"facility {record['code']} exists already", 409)
        ledger.entry_append(
            signer=secretariat_signer(),
            kind="facility.registered",
            entry_id=idem.entry_id,
            payload={"facility": record},
        )
        ledger.key_register(
            signer=log_signer(),
            kind="facility",
            owner=record["code"],
            name=f"facility-{record['code']}",
            public_key=public_key,
        )
    return Facility.objects.get(code=record["code"])


@applier("facility.registered")
def apply_facility_registered(entry: Appended) -> None:
    f = entry.payload["facility"]
    if not by_secretariat(entry.author) or Facility.objects.filter(code=f["code"]).exists():
        return
    Facility.objects.create(
        code=f["code"],
        name=f["name"],
        operator_id=f["operator"],
        country=f["country"],
        timezone=f["timezone"],
        default_accelerator=f["default_accelerator"],
        partitions=f["partitions"],
        accounts=f["accounts"],
        registered_in=entry.index,
        changed_in=entry.index,
    )


# --- who acts for a facility, and its tables ---------------------------------------------------


def facility_signer(actor, facility: Facility):
    """Who acts for a facility, with which key, and whether that key attests: the
    facility's operator's recorders and signatories sign with the facility's hosted key
    (attesting), or with the operator's key when the facility holds its key itself
    (reporting, for the facility to attest); the secretariat signs with its own key
    (reporting), as does the operator at the console (``actor`` ``None``)."""
    if actor is None or acting_for(actor) is None:
        return secretariat_signer(), False
    if recording_for(actor) != facility.operator_id:
        raise GovernanceError(
            f"only the delegates of {facility.operator_id} act for {facility.code}", 403
        )
    key = facility_key(facility)
    if key is None or key.custody != Key.Custody.HOSTED:
        return member_signer(facility.operator_id), False
    try:
        return hosted_signer(key.fingerprint), True
    except HostedKeyError as exc:
        raise GovernanceError(str(exc), 409) from exc


def facility_update(
    *, actor, facility: Facility, changes: dict, idempotency_key: str | None = None
) -> Facility:
    """Change the tables the facility keeps (accounts, partitions, zone, default type)."""
    if not isinstance(changes, dict) or not changes or set(changes) - CHANGEABLE:
        raise GovernanceError(f"changes: some of {', '.join(sorted(CHANGEABLE))}")
    checks = {
        "timezone": lambda v: zone(v, "timezone"),
        "partitions": _partitions,
        "accounts": _accounts,
        "default_accelerator": lambda v: _tag(v, "default_accelerator"),
    }
    changes = {k: checks[k](v) for k, v in changes.items()}
    if acting_for(actor) not in (None, facility.operator_id):
        # Which member an account credits decides what imports attest: a signatory's
        # decision, not a recorder's.
        raise GovernanceError(
            f"only the secretariat or a signatory of {facility.operator_id} changes its tables", 403
        )
    signer, attests = facility_signer(actor, facility)
    if not attests and acting_for(actor) is not None:
        raise GovernanceError("the facility's key is external: its own systems sign changes", 403)
    idem = idempotency(actor, idempotency_key)
    payload = {"facility": facility.code, "changes": changes}
    if not idem.earlier("facility.updated", payload):
        with transaction.atomic(durable=True):
            ledger.entry_append(
                signer=signer, kind="facility.updated", entry_id=idem.entry_id, payload=payload
            )
    return Facility.objects.get(code=facility.code)


@applier("facility.updated")
def apply_facility_updated(entry: Appended) -> None:
    p = entry.payload
    key = key_of(entry.author)
    facility = Facility.objects.filter(code=p["facility"]).first()
    if facility is None or key is None:
        return
    if not (is_secretariat(key) or (key.kind == "facility" and key.owner == facility.code)):
        return
    Facility.objects.filter(code=facility.code).update(changed_in=entry.index, **p["changes"])
