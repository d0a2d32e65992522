"""The consortium's founding and its members.

Entry kinds and their one applier each:

``consortium.founded`` (signed by the log key, once)
    ``{"name", "rules": {...}, "members": [member, ...]}``; founding members are members.
``member.applied`` (the secretariat key)
    ``{"member": member}``: an applicant, admitted later by an accepted proposal
    (``member.admit``); applicants neither vote nor act.

A member is ``{"code", "kind", "name", "country", "figures"}``. Services check who may
do what; appliers only apply, so replay rebuilds the same tables. Seats are in
``seats``, a member's keys in ``member_keys``, who may act in ``selectors``, who signs
and the idempotency of changes in ``changes``. The names imported as themselves
(``x as x``) are re-exported for the tests that still import them from here.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

import pycountry
from django.db import transaction

from consortium.governance.changes import (
    SECRETARIAT_OWNER,
    GovernanceError,
    by_secretariat,
    idempotency,
    secretariat_only,
    secretariat_signer,
)
from consortium.governance.models import Consortium, Member
from consortium.governance.rules import DEFAULT_RULES, check_rules, check_weights
from consortium.governance.validators import COUNTRY_RE, DECIMAL_RE, SLUG_RE
from ledger import services as ledger
from ledger.services import Appended, Key, applier, log_signer, projection

for model in (Consortium, Member):
    projection(model)

MEMBER_FIELDS = {"code", "kind", "name", "country", "figures"}


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
        name, country = _nation(code, name, country)
    else:
        _institution(code, name, country)
    figures = dict(figures or {})
    for key, value in figures.items():
        _check_figure(key, value)
    return {"code": code, "kind": kind, "name": name, "country": country, "figures": figures}


def _nation(code: str, name: str | None, country: str | None) -> tuple[str, str]:
    """A nation's name and country: its code is its country, its name the standard's."""
    nation = pycountry.countries.get(alpha_2=code) if len(code) == 2 else None
    if nation is None or code != code.upper():
        raise GovernanceError(f"{code!r} is not an ISO 3166-1 alpha-2 country code")
    country = country or code
    if country != code:
        raise GovernanceError("a nation's country is its own code")
    return name or nation.name, country


def _institution(code: str, name: str | None, country: str | None) -> None:
    if not SLUG_RE.fullmatch(code):
        raise GovernanceError("an institution's code is 2-32 lowercase letters, digits and -")
    if (
        not country
        or not COUNTRY_RE.fullmatch(country)
        or pycountry.countries.get(alpha_2=country) is None
    ):
        raise GovernanceError(f"{country!r} is not an ISO 3166-1 alpha-2 country code")
    if not name:
        raise GovernanceError("an institution needs a name")


def _check_figure(key: str, value) -> None:
    message = (
        f"figure {key} must be a non-negative integer, or a decimal string of digits "
        "(at most 18 before the point and 18 after)"
    )
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise GovernanceError(message)
    if isinstance(value, str) and not DECIMAL_RE.fullmatch(value):
        raise GovernanceError(message)
    if isinstance(value, int) and not 0 <= value < 10**18:
        raise GovernanceError(message)
    try:
        number = Decimal(value)
    except InvalidOperation as exc:
        raise GovernanceError(message) from exc
    if not number.is_finite() or number < 0:
        raise GovernanceError(message)


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
    if not by_secretariat(entry.author) or Member.objects.filter(code=m["code"]).exists():
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


# --- services ------------------------------------------------------------------------------


def consortium_found(*, name: str, members: list[dict], rules: dict | None = None) -> Appended:
    """Record the consortium's founding (once), with its founding members, their first
    (hosted) keys and a secretariat key. Initialises the log first if needed."""
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
    secretariat_only(actor, "the secretariat records applications")
    if not isinstance(record, dict) or not isinstance(record.get("code"), str):
        raise GovernanceError("the applicant is a member record with a code")
    if set(record) - MEMBER_FIELDS:
        raise GovernanceError(f"unknown field {', '.join(sorted(set(record) - MEMBER_FIELDS))}")
    checked = member_record(
        **{k: record.get(k) for k in ("code", "name", "country", "figures")},
        kind=record.get("kind") or "nation",
    )
    idem = idempotency(actor, idempotency_key)
    if idem.earlier("member.applied", {"member": checked}):
        return Member.objects.get(code=checked["code"])
    with transaction.atomic(durable=True):
        if Member.objects.filter(code=checked["code"]).exists():
            raise GovernanceError(f"{checked['code']} is already known", 409)
        entry = ledger.entry_append(
            signer=secretariat_signer(),
            kind="member.applied",
            entry_id=idem.entry_id,
            payload={"member": checked},
        )
        if not Member.objects.filter(code=checked["code"], registered_in=entry.index).exists():
            raise GovernanceError(f"{checked['code']} is already known", 409)
    return Member.objects.get(code=checked["code"])
