"""Funds: payments a member records, pending until its treasurer confirms them against
its books (or rejects them).

Entry kinds, each with one applier:

``funds.contributed`` (the member's key)
    ``{"contribution": uuid, "amount": decimal, "currency": ISO 4217, "date", "reference"}``:
    pending until the treasurer confirms it.
``funds.confirmed`` (the treasurer's key: the secretariat's, or the member the treaty
names as ``treasurer``; the secretariat's for the treasurer's own payments)
    ``{"contribution": uuid, "amount", "currency", "date"}``: the payment as the
    receiving side's books show it; those figures count.
``funds.rejected`` (the same key)
    ``{"contribution": uuid, "reason"}``: the payment is not in the books; it never counts.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

from django.db import transaction

from consortium.governance.agreements import effective_dates
from consortium.governance.changes import (
    SECRETARIAT_OWNER,
    GovernanceError,
    idempotency,
    is_secretariat,
    member_signer,
    secretariat_signer,
)
from consortium.governance.models import Agreement, AgreementParty
from consortium.governance.selectors import acting_for, recording_for
from consortium.governance.terms import currency_code, decimal_string
from contributions.balances import tallied, tally_added
from contributions.common import (
    key_of,
    member_key_owner,
    new_contribution,
    new_contribution_id,
    recorder,
    refuse,
    submitting_recorder,
    text,
)
from contributions.models import Contribution
from contributions.selectors import treasurer_of
from ledger import services as ledger
from ledger.services import Appended, Entry, applier


def check_funds(amount, currency, date_paid, reference) -> None:
    """An amount paid: an exact decimal (at most 6 places), ISO 4217, a past day."""
    value = decimal_string(amount, "amount", positive=True)
    if value.as_tuple().exponent < -6 or value >= 10**12:
        raise GovernanceError("amount: at most 6 decimal places, under 10^12")
    currency_code(currency, "currency")
    if currency in NOT_PAID_IN:
        raise GovernanceError(
            f"currency: {currency} ({NOT_PAID_IN[currency]}) is not a currency funds are paid "
            "in: give the currency paid"
        )
    try:
        day = date.fromisoformat(date_paid) if isinstance(date_paid, str) else None
    except ValueError:
        day = None
    if day is None or not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", date_paid):
        raise GovernanceError("date: the day paid, YYYY-MM-DD")
    if day > datetime.now(UTC).date():
        raise GovernanceError("date: the day paid is not in the future")
    text(reference, "reference", 200, required=False)


# ISO 4217 codes that name no currency anyone pays in: the X-codes for precious metals,
# bond-market units, special drawing rights, testing and "no currency", and the fund codes
# (units of account and indexing) that stand beside a country's currency.
NOT_PAID_IN = {
    "XXX": "no currency",
    "XTS": "a code for testing",
    "XAU": "gold",
    "XAG": "silver",
    "XPT": "platinum",
    "XPD": "palladium",
    "XBA": "a bond-market unit",
    "XBB": "a bond-market unit",
    "XBC": "a bond-market unit",
    "XBD": "a bond-market unit",
    "XDR": "special drawing rights",
    "XSU": "the Sucre, a unit of account",
    "XUA": "the ADB unit of account",
    "BOV": "a fund code",
    "CHE": "a fund code",
    "CHW": "a fund code",
    "CLF": "a fund code",
    "COU": "a fund code",
    "MXV": "a fund code",
    "USN": "a fund code",
    "UYI": "a fund code",
    "UYW": "a fund code",
}


def check_paid_under_agreement(member: str, day: str) -> None:
    """Funds count under the agreements that share the cost (treaties, compute pledges):
    the day paid must fall within the effective period of one that binds ``member`` and
    has entered into force (from its first day to its last, or today)."""
    paid = date.fromisoformat(day)
    today = datetime.now(UTC).date()
    periods = []
    bound = AgreementParty.objects.filter(
        member_id=member,
        signed_in__isnull=False,
        agreement__kind__in=(Agreement.Kind.TREATY, Agreement.Kind.COMPUTE_PLEDGE),
        agreement__in_force_in__isnull=False,
    ).select_related("agreement")
    for party in bound:
        start, until = effective_dates(party.agreement)
        periods.append((start, min(until, today) if until else today))
        if start <= paid <= periods[-1][1]:
            return
    if not periods:
        raise GovernanceError(
            f"date: {member} is bound by no treaty or compute pledge in force, and funds are "
            "paid under one"
        )
    lives = ", ".join(f"{a} to {b}" for a, b in sorted(periods))
    raise GovernanceError(
        f"date: {day} is outside the life of the agreements {member} pays under ({lives})"
    )


def funds_contribute(
    *,
    actor,
    amount: str,
    currency: str,
    date_paid: str,
    reference: str = "",
    idempotency_key: str | None = None,
) -> Contribution:
    """Record funds the actor's member paid (exact decimal, ISO 4217, the day paid within
    the life of an agreement it pays under)."""
    check_funds(amount, currency, date_paid, reference)
    check_paid_under_agreement(recorder(actor), date_paid)
    return new_contribution(
        actor,
        idempotency_key,
        "funds.contributed",
        {"amount": amount, "currency": currency, "date": date_paid, "reference": reference},
    )


@applier("funds.contributed")
def apply_funds(entry: Appended) -> None:
    member = member_key_owner(entry)
    if member is None or Contribution.objects.filter(id=entry.payload["contribution"]).exists():
        return
    p = entry.payload
    made = Contribution.objects.create(
        id=uuid.UUID(p["contribution"]),
        kind=Contribution.Kind.FUNDS,
        member_id=member,
        state=Contribution.State.PENDING,
        recorded_in=entry.index,
        recorded_at=entry.integrated_time,
        amount=Decimal(p["amount"]),
        amount_micros=int(Decimal(p["amount"]) * 1_000_000),
        currency=p["currency"],
        date=date.fromisoformat(p["date"]),
        delivered_on=date.fromisoformat(p["date"]),
    )
    tally_added([made])


# --- the treasurer's confirmation --------------------------------------------------------------


def _by_treasurer(author: str, member: str) -> bool:
    """Is ``author`` the key of ``member``'s treasurer (see ``treasurer_of``)?"""
    key = key_of(author)
    treasurer = treasurer_of(member)
    if treasurer == SECRETARIAT_OWNER:
        return is_secretariat(key)
    return key is not None and (key.kind, key.owner) == ("member", treasurer)


def _treasurer_signer(actor, contribution: Contribution):
    """The key the actor confirms ``contribution`` with, if it acts for its treasurer."""
    if contribution.kind != Contribution.Kind.FUNDS:
        raise GovernanceError(
            "only funds await a treasurer's confirmation (compute is attested by its facility)",
            409,
        )
    treasurer = treasurer_of(contribution.member_id)
    if treasurer == SECRETARIAT_OWNER:
        if acting_for(actor) is not None:
            raise GovernanceError(
                f"the secretariat confirms {contribution.member_id}'s payments against its books",
                403,
            )
        return secretariat_signer()
    if recording_for(actor) != treasurer:
        raise GovernanceError(
            f"{treasurer}, the treasurer the treaty names, confirms {contribution.member_id}'s "
            "payments against its books: its recorders or signatories",
            403,
        )
    return member_signer(treasurer)


def _settle(actor, contribution: Contribution, kind: str, payload: dict, idempotency_key):
    signer = _treasurer_signer(actor, contribution)
    idem = idempotency(actor, idempotency_key)
    if not idem.earlier(kind, payload):
        with transaction.atomic(durable=True):
            locked = Contribution.objects.select_for_update().get(id=contribution.id)
            if locked.state != Contribution.State.PENDING:
                done = "confirmed" if locked.state == Contribution.State.COUNTED else locked.state
                raise GovernanceError(
                    f"the payment is {done}: only a pending payment is confirmed or rejected",
                    409,
                )
            ledger.entry_append(signer=signer, entry_id=idem.entry_id, kind=kind, payload=payload)
    contribution.refresh_from_db()
    return contribution


def funds_confirm(
    *,
    actor,
    contribution: Contribution,
    amount: str | None = None,
    currency: str | None = None,
    date_paid: str | None = None,
    idempotency_key: str | None = None,
) -> Contribution:
    """The treasurer confirms a pending payment against its own books (the secretariat,
    or the member the treaty names as treasurer): the amount, currency and day as
    received (by default, as recorded) count from then on."""
    _treasurer_signer(actor, contribution)  # refused before anything else is read
    recorded = _recorded_funds(contribution)
    amount = recorded["amount"] if amount is None else amount
    currency = recorded["currency"] if currency is None else currency
    date_paid = recorded["date"] if date_paid is None else date_paid
    check_funds(amount, currency, date_paid, "")
    payload = {
        "contribution": str(contribution.id),
        "amount": amount,
        "currency": currency,
        "date": date_paid,
    }
    return _settle(actor, contribution, "funds.confirmed", payload, idempotency_key)


def funds_reject(
    *, actor, contribution: Contribution, reason: str, idempotency_key: str | None = None
) -> Contribution:
    """The treasurer finds no such payment in its books: it never counts."""
    _treasurer_signer(actor, contribution)
    text(reason, "reason", 500)
    payload = {"contribution": str(contribution.id), "reason": reason}
    return _settle(actor, contribution, "funds.rejected", payload, idempotency_key)


def _recorded_funds(contribution: Contribution) -> dict:
    """The amount, currency and day the member recorded, as written in its entry."""
    entry = Entry.objects.filter(index=contribution.recorded_in).first()
    p = entry.payload if entry is not None else {}
    if p.get("contribution") != str(contribution.id):
        raise GovernanceError("the contribution's entry is not funds.contributed", 409)
    return {"amount": p["amount"], "currency": p["currency"], "date": p["date"]}


def _pending_settled_by_its_treasurer(entry: Appended) -> Contribution | None:
    """The pending payment a funds.confirmed or funds.rejected entry settles, if it is
    signed by that payment's treasurer; otherwise the entry is on the record, without
    effect."""
    c = Contribution.objects.filter(
        id=uuid.UUID(entry.payload["contribution"]), kind=Contribution.Kind.FUNDS
    ).first()
    if c is None or c.state != Contribution.State.PENDING:
        return None
    return c if _by_treasurer(entry.author, c.member_id) else None


@applier("funds.confirmed")
def apply_funds_confirmed(entry: Appended) -> None:
    p = entry.payload
    c = _pending_settled_by_its_treasurer(entry)
    if c is None:
        return
    recorded = {
        "amount": format(c.amount.normalize(), "f"),
        "currency": c.currency,
        "date": c.date.isoformat(),
    }
    amount, day = Decimal(p["amount"]), date.fromisoformat(p["date"])
    same = (Decimal(recorded["amount"]), recorded["currency"], recorded["date"]) == (
        amount,
        p["currency"],
        p["date"],
    )
    with tallied(Contribution.objects.filter(id=c.id)):
        Contribution.objects.filter(id=c.id).update(
            state=Contribution.State.COUNTED,
            confirmed_in=entry.index,
            amount=amount,
            amount_micros=int(amount * 1_000_000),
            currency=p["currency"],
            date=day,
            delivered_on=day,
            claimed=None if same else recorded,
        )


@applier("funds.rejected")
def apply_funds_rejected(entry: Appended) -> None:
    c = _pending_settled_by_its_treasurer(entry)
    if c is None:
        return
    with tallied(Contribution.objects.filter(id=c.id)):
        Contribution.objects.filter(id=c.id).update(
            state=Contribution.State.REJECTED, confirmed_in=entry.index
        )


# --- entries signed by their authors' own keys (POST /api/v1/ledger/entries) -------------------


@ledger.accepts("funds.contributed")
def _submitted_funds(signed, key, submitter) -> None:
    payload = signed.envelope["payload"]
    submitting_recorder(key, submitter)
    fields = {"contribution", "amount", "currency", "date", "reference"}
    if set(payload) != fields:
        raise ledger.Refused(f"funds.contributed payload is {{{', '.join(sorted(fields))}}}")
    new_contribution_id(payload)
    refuse(
        check_funds, payload["amount"], payload["currency"], payload["date"], payload["reference"]
    )
    refuse(check_paid_under_agreement, key.owner, payload["date"])


def _submitted_settlement(signed, key, submitter, fields: set[str]) -> Contribution:
    """A treasurer holding its own key confirms or rejects a pending payment."""
    payload = signed.envelope["payload"]
    kind = signed.envelope["kind"]
    if set(payload) != fields:
        raise ledger.Refused(f"{kind} payload is {{{', '.join(sorted(fields))}}}")
    try:
        c = Contribution.objects.filter(id=uuid.UUID(str(payload["contribution"]))).first()
    except ValueError:
        c = None
    if c is None or c.kind != Contribution.Kind.FUNDS:
        raise ledger.Refused("no such payment", 404)
    treasurer = treasurer_of(c.member_id)
    if (key.kind, key.owner) != ("member", treasurer) or recording_for(submitter) != key.owner:
        raise ledger.Refused(f"only {treasurer}, the treasurer, confirms this payment", 403)
    if c.state != Contribution.State.PENDING:
        raise ledger.Refused(f"the payment is {c.state}: it is not pending", 409)
    return c


@ledger.accepts("funds.confirmed")
def _submitted_confirmation(signed, key, submitter) -> None:
    _submitted_settlement(signed, key, submitter, {"contribution", "amount", "currency", "date"})
    p = signed.envelope["payload"]
    refuse(check_funds, p["amount"], p["currency"], p["date"], "")


@ledger.accepts("funds.rejected")
def _submitted_rejection(signed, key, submitter) -> None:
    _submitted_settlement(signed, key, submitter, {"contribution", "reason"})
    refuse(text, signed.envelope["payload"]["reason"], "reason", 500)
