"""Funds: paid in a currency (not an ISO 4217 unit of account, metal or testing code), on
a day within the life of a treaty or compute pledge the member pays under."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine

from consortium.governance.changes import GovernanceError
from contributions.funds import funds_contribute
from contributions.models import Contribution
from ledger.services import Entry
from tests import worlds
from tests.steps.api import api_as
from tests.steps.contributions import post_signed, treaty_from

# Every test here starts from the same world: built once for the module (tests/worlds.py).
lumi = worlds.shared("lumi")

TODAY = datetime.now(UTC).date()


def pay(lumi, day: str, currency: str = "EUR", who: str = "rec_se"):
    return funds_contribute(
        actor=lumi["people"][who], amount="10", currency=currency, date_paid=day
    )


def refused(lumi, day: str, currency: str = "EUR", who: str = "rec_se") -> str:
    before = Entry.objects.count()
    with pytest.raises(GovernanceError) as exc:
        pay(lumi, day, currency, who)
    assert exc.value.status == 400
    assert Entry.objects.count() == before
    return str(exc.value)


@pytest.mark.parametrize(
    "code",
    [
        "XXX",
        "XTS",
        "XAU",
        "XAG",
        "XPT",
        "XPD",
        "XBA",
        "XBB",
        "XBC",
        "XBD",
        "XDR",
        "XSU",
        "XUA",
        "CHE",
        "USN",
    ],
)
def test_codes_that_are_not_currencies_are_refused(lumi, code):
    treaty_from(lumi, TODAY - timedelta(days=30))
    message = refused(lumi, TODAY.isoformat(), code)
    assert (
        message.startswith(f"currency: {code} (") and "not a currency funds are paid in" in message
    )


@pytest.mark.parametrize("code", ["EUR", "SEK", "XOF", "XAF", "XCD", "CHF"])
def test_real_currencies_including_x_codes_of_currencies_are_accepted(lumi, code):
    treaty_from(lumi, TODAY - timedelta(days=30))
    assert pay(lumi, TODAY.isoformat(), code).currency == code


def test_funds_are_refused_when_no_agreement_binds_the_member(lumi):
    assert "date: SE is bound by no treaty or compute pledge in force" in refused(
        lumi, TODAY.isoformat()
    )


@pytest.mark.parametrize("day", ["0001-01-01", "1999-12-31"])
def test_a_day_before_the_treaty_took_effect_is_refused(lumi, day):
    start = TODAY - timedelta(days=30)
    treaty_from(lumi, start)
    message = refused(lumi, day)
    assert message == (
        f"date: {day} is outside the life of the agreements SE pays under ({start} to {TODAY})"
    )


def test_a_day_after_the_agreements_last_day_is_refused(lumi):
    start, until = TODAY - timedelta(days=60), TODAY + timedelta(days=10)
    a = treaty_from(lumi, start, until=until)
    assert a.state == "in_force"
    assert pay(lumi, start.isoformat()).date == start
    assert "outside the life" in refused(lumi, (start - timedelta(days=1)).isoformat())
    assert "not in the future" in refused(lumi, (TODAY + timedelta(days=1)).isoformat())


def test_a_day_after_an_expired_agreement_is_refused(lumi):
    start, until = date(2026, 1, 1), date(2026, 3, 31)
    with time_machine.travel(datetime(2026, 2, 1, 12, tzinfo=UTC)):
        a = treaty_from(lumi, start, until=until)
        assert a.state == "in_force"
    assert pay(lumi, "2026-03-31").date == until
    message = refused(lumi, "2026-04-01")
    assert message.endswith("(2026-01-01 to 2026-03-31)")


def test_an_agreement_not_yet_in_force_does_not_count(lumi):
    a = treaty_from(lumi, TODAY - timedelta(days=30), signers=("sig_fi", "sig_se"))
    assert a.state == "open"
    assert "bound by no treaty or compute pledge in force" in refused(lumi, TODAY.isoformat())


def test_a_member_not_party_pays_under_none_of_it(lumi):
    treaty_from(
        lumi, TODAY - timedelta(days=30), parties=("FI", "SE"), signers=("sig_fi", "sig_se")
    )
    assert "NL is bound by no treaty" in refused(lumi, TODAY.isoformat(), who="sig_nl")
    assert pay(lumi, TODAY.isoformat()).member_id == "SE"


def test_a_compute_pledge_counts_too(lumi):
    treaty_from(lumi, TODAY - timedelta(days=10), kind="compute_pledge")
    assert pay(lumi, (TODAY - timedelta(days=10)).isoformat()).member_id == "SE"


def test_the_api_answers_400_naming_the_field(lumi):
    treaty_from(lumi, TODAY - timedelta(days=30))
    api = api_as(lumi["people"]["rec_se"])
    before = Entry.objects.count()
    for body, field in (
        ({"amount": "1", "currency": "XXX", "date": TODAY.isoformat()}, "currency: XXX"),
        ({"amount": "1", "currency": "EUR", "date": "0001-01-01"}, "date: 0001-01-01"),
    ):
        r = api.post("/api/v1/contributions/funds", body, format="json")
        assert r.status_code == 400 and r["Content-Type"] == "application/problem+json"
        assert r.json()["detail"].startswith(field)
    assert Entry.objects.count() == before


def test_a_client_signed_funds_entry_is_held_to_the_same_rules(lumi):
    from ledger import services as ledger_services
    from ledger.keys import EntrySigner
    from ledger.services import log_signer

    treaty_from(lumi, TODAY - timedelta(days=30))
    key = EntrySigner.generate("se-hsm")
    ledger_services.key_register(
        signer=log_signer(), kind="member", owner="SE", name="se-hsm", public_key=key.public_key
    )
    base = {"amount": "12.5", "currency": "SEK", "date": TODAY.isoformat(), "reference": ""}
    before = Entry.objects.count()
    for bad, field in (({"currency": "XAU"}, "currency: XAU"), ({"date": "0001-01-01"}, "date:")):
        payload = {"contribution": str(uuid.uuid4()), **base, **bad}
        r = post_signed(lumi["people"]["rec_se"], key, "funds.contributed", payload)
        assert r.status_code == 400 and r.json()["detail"].startswith(field), r.json()
    assert Entry.objects.count() == before
    ok = {"contribution": str(uuid.uuid4()), **base}
    assert post_signed(lumi["people"]["rec_se"], key, "funds.contributed", ok).status_code == 201
    assert Contribution.objects.get(id=ok["contribution"]).member_id == "SE"
