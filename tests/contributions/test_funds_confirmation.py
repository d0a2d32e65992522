"""Funds count only once the receiving side confirms them against its own books: the
secretariat, or the member the treaty names as treasurer. Until then they are pending,
shown and not counted, and move neither balances nor download rights."""

from __future__ import annotations

import pytest

from consortium.access.entitlements import balance_ratio
from consortium.governance.changes import GovernanceError, secretariat_signer
from consortium.governance.models import Agreement
from consortium.governance.terms import check_terms
from contributions.data import data_contribute
from contributions.funds import funds_confirm, funds_contribute, funds_reject
from contributions.models import Contribution
from contributions.report import cost_share_report
from contributions.selectors import treasurer_of
from ledger import services as ledger
from ledger.core.envelope import parse_leaf, verify_leaf_signature
from ledger.keys import log_origin
from ledger.services import Entry, Key
from tests.steps.api import api_as
from tests.steps.contributions import DATASET, TODAY, treaty
from tests.steps.signin import sign_in


def _pay(lumi, who="rec_se", amount="1", currency="EUR"):
    # Funds are paid under a treaty in force: one naming no treasurer, unless the test made one.
    if not Agreement.objects.filter(state="in_force").exists():
        treaty(lumi)
    return funds_contribute(
        actor=lumi["people"][who], amount=amount, currency=currency, date_paid=TODAY.isoformat()
    )


def _line(agreement, member):
    return next(
        m for m in cost_share_report(agreement).as_dict()["members"] if m["member"] == member
    )


def test_a_recorded_payment_is_pending_and_counts_nothing(lumi):
    a = treaty(lumi)
    c = _pay(lumi, amount="1")
    assert (c.state, c.confirmed_in) == ("pending", None)
    se = _line(a, "SE")
    assert (se["delivered"]["funds"], se["held"], se["funds_pending"]) == (
        "0.00",
        "1.00",
        {"EUR": "1"},
    )
    api = api_as(lumi["people"]["rec_se"])
    listed = api.get("/api/v1/contributions?state=pending").json()["results"]
    assert [x["id"] for x in listed] == [str(c.id)]


def test_a_payment_counts_once_the_secretariat_confirms_it(lumi):
    a = treaty(lumi)
    c = _pay(lumi, amount="250")
    before = balance_ratio(a, "SE")
    funds_confirm(actor=lumi["people"]["ops"], contribution=c)
    c.refresh_from_db()
    assert (
        c.state == "counted" and c.confirmed_in == Entry.objects.get(kind="funds.confirmed").index
    )
    se = _line(a, "SE")
    assert (se["delivered"]["funds"], se["held"], se["funds_pending"]) == ("250.00", "0.00", {})
    assert balance_ratio(a, "SE") > (before or 0)


def test_a_pending_payment_moves_no_balance(lumi):
    a = treaty(lumi)
    data_contribute(
        actor=lumi["people"]["sig_nl"],
        dataset={
            "name": "Dutch web",
            "description": "",
            "manifest_sha256": "cd" * 32,
            "size_bytes": 1,
            "files": 1,
            "tokens": 100_000_000,
            "licence": "CC0-1.0",
            "duo": {"permission": "DUO:0000042", "modifiers": []},
            "access_mode": "remote",
        },
    )
    ratio = balance_ratio(a, "SE")
    _pay(lumi, amount="1000000")
    assert balance_ratio(a, "SE") == ratio == 0


def test_the_treasurer_the_treaty_names_confirms(lumi):
    people = lumi["people"]
    treaty(lumi, treasurer="FI")
    c = _pay(lumi)
    assert treasurer_of("SE") == "FI"
    with pytest.raises(GovernanceError, match="FI, the treasurer") as exc:
        funds_confirm(actor=people["ops"], contribution=c)
    assert exc.value.status == 403
    with pytest.raises(GovernanceError, match="FI, the treasurer"):
        funds_confirm(actor=people["sig_se"], contribution=c)  # its own payment
    assert not Entry.objects.filter(kind="funds.confirmed").exists()
    funds_confirm(actor=people["rec_fi"], contribution=c)
    entry = Entry.objects.get(kind="funds.confirmed")
    fi_key = Key.objects.get(kind="member", owner="FI")
    assert entry.author == fi_key.fingerprint
    c.refresh_from_db()
    assert c.state == "counted"


def test_the_treasurers_own_payments_are_confirmed_by_the_secretariat(lumi):
    people = lumi["people"]
    treaty(lumi, treasurer="FI")
    own = _pay(lumi, who="rec_fi")
    assert treasurer_of("FI") == "secretariat"
    with pytest.raises(GovernanceError) as exc:
        funds_confirm(actor=people["sig_fi"], contribution=own)
    assert exc.value.status == 403
    funds_confirm(actor=people["ops"], contribution=own)
    own.refresh_from_db()
    assert own.state == "counted"


def test_under_a_treaty_naming_no_treasurer_the_secretariat_confirms(lumi):
    c = _pay(lumi)
    assert treasurer_of("SE") == "secretariat"
    with pytest.raises(GovernanceError) as exc:
        funds_confirm(actor=lumi["people"]["sig_fi"], contribution=c)
    assert exc.value.status == 403
    funds_confirm(actor=lumi["people"]["ops"], contribution=c)


def test_the_figures_confirmed_are_the_ones_that_count(lumi):
    a = treaty(lumi)
    c = _pay(lumi, amount="100")
    funds_confirm(
        actor=lumi["people"]["ops"], contribution=c, amount="98.50", date_paid="2026-01-05"
    )
    c.refresh_from_db()
    assert (str(c.amount.normalize()), c.date.isoformat()) == ("98.5", "2026-01-05")
    assert c.claimed == {"amount": "100", "currency": "EUR", "date": TODAY.isoformat()}
    assert Entry.objects.get(kind="funds.confirmed").payload == {
        "contribution": str(c.id),
        "amount": "98.50",
        "currency": "EUR",
        "date": "2026-01-05",
    }
    assert _line(a, "SE")["delivered"]["funds"] == "98.50"


def test_a_rejected_payment_never_counts(lumi):
    a = treaty(lumi)
    c = _pay(lumi)
    funds_reject(actor=lumi["people"]["ops"], contribution=c, reason="not in our books")
    c.refresh_from_db()
    assert c.state == "rejected"
    assert Entry.objects.get(kind="funds.rejected").payload["reason"] == "not in our books"
    se = _line(a, "SE")
    assert (se["delivered"]["funds"], se["held"]) == ("0.00", "0.00")
    with pytest.raises(GovernanceError, match="the payment is rejected") as exc:
        funds_confirm(actor=lumi["people"]["ops"], contribution=c)
    assert exc.value.status == 409


def test_a_payment_is_confirmed_once(lumi):
    c = _pay(lumi)
    funds_confirm(actor=lumi["people"]["ops"], contribution=c)
    with pytest.raises(GovernanceError, match="confirmed") as exc:
        funds_confirm(actor=lumi["people"]["ops"], contribution=c)
    assert exc.value.status == 409
    assert Entry.objects.filter(kind="funds.confirmed").count() == 1


def test_a_confirmation_signed_by_another_key_than_the_treasurers_is_without_effect(lumi):
    treaty(lumi, treasurer="FI")
    c = _pay(lumi)
    # The secretariat's key is not the treasurer's: on the record, without effect.
    ledger.entry_append(
        signer=secretariat_signer(),
        kind="funds.confirmed",
        payload={
            "contribution": str(c.id),
            "amount": "1",
            "currency": "EUR",
            "date": TODAY.isoformat(),
        },
    )
    c.refresh_from_db()
    assert (c.state, c.confirmed_in) == ("pending", None)


# --- the API and the admin ----------------------------------------------------------------------


def test_the_treasurer_confirms_through_the_api(lumi):
    c = _pay(lumi)
    url = f"/api/v1/contributions/{c.id}/confirmation"
    r = api_as(lumi["people"]["ops"]).post(url, {"outcome": "confirmed"}, format="json")
    assert r.status_code == 200, r.content
    assert r.json()["state"] == "counted" and r.json()["confirmed_in"] is not None


@pytest.mark.parametrize("who", ["sig_se", "rec_se", "sig_fi", "aud", "obs_nl"])
def test_no_one_else_confirms_through_the_api(lumi, who):
    c = _pay(lumi)
    before = Entry.objects.count()
    r = api_as(lumi["people"][who]).post(
        f"/api/v1/contributions/{c.id}/confirmation", {"outcome": "confirmed"}, format="json"
    )
    assert r.status_code == 403 and r["Content-Type"] == "application/problem+json"
    assert Entry.objects.count() == before


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "outcome"),
        ({"outcome": "maybe"}, "outcome"),
        ({"outcome": "rejected"}, "reason"),
        ({"outcome": "rejected", "reason": "x", "amount": "1"}, "not an amount"),
        ({"outcome": "confirmed", "reason": "x"}, "no reason"),
        ({"outcome": "confirmed", "amount": "1e3"}, "amount"),
        ({"outcome": "confirmed", "currency": "XYZ"}, "ISO 4217"),
        ({"outcome": "confirmed", "date": "2026-02-30"}, "the day paid"),
    ],
)
def test_bad_confirmations_are_400s_that_write_nothing(lumi, body, message):
    c = _pay(lumi)
    before = Entry.objects.count()
    r = api_as(lumi["people"]["ops"]).post(
        f"/api/v1/contributions/{c.id}/confirmation", body, format="json"
    )
    assert r.status_code == 400 and r["Content-Type"] == "application/problem+json"
    assert message in r.content.decode()
    assert Entry.objects.count() == before


def test_only_funds_are_confirmed_and_unknown_ids_are_404(lumi):
    data = data_contribute(actor=lumi["people"]["rec_se"], dataset=DATASET)
    api = api_as(lumi["people"]["ops"])
    r = api.post(
        f"/api/v1/contributions/{data.id}/confirmation", {"outcome": "confirmed"}, format="json"
    )
    assert r.status_code == 409 and "only funds" in r.json()["detail"]
    r = api.post(
        "/api/v1/contributions/00000000-0000-4000-8000-000000000000/confirmation",
        {"outcome": "confirmed"},
        format="json",
    )
    assert r.status_code == 404


def test_the_treasurer_confirms_in_the_admin(lumi, client):
    people = lumi["people"]
    treaty(lumi, treasurer="FI")
    c = _pay(lumi)
    sign_in(client, people["sig_fi"])
    changelist = "/admin/contributions/contribution/"
    assert str(c.id) in client.get(changelist).content.decode()  # awaiting FI's confirmation
    r = client.post(changelist, {"action": "confirm_funds", "_selected_action": [str(c.id)]})
    assert r.status_code == 302
    c.refresh_from_db()
    assert c.state == "counted"


def test_the_terms_name_the_secretariat_or_a_party_as_treasurer():
    base = {
        "parties": ["FI", "SE"],
        "effective": {"from": "2026-01-01", "until": None},
        "accounting_unit": "EUR",
        "cost_sharing": {"method": "scale", "shares": {"FI": "0.5", "SE": "0.5"}},
    }
    members = {"FI", "SE", "NL"}
    assert check_terms("treaty", {**base, "treasurer": "FI"}, members)["treasurer"] == "FI"
    check_terms("treaty", {**base, "treasurer": "secretariat"}, members)
    for bad in ("NL", "fi", 7):
        with pytest.raises(GovernanceError, match=r"terms\.treasurer"):
            check_terms("treaty", {**base, "treasurer": bad}, members)


def test_the_confirmation_is_signed_by_the_treasurers_key(lumi):
    treaty(lumi, treasurer="FI")
    c = _pay(lumi)
    funds_confirm(actor=lumi["people"]["sig_fi"], contribution=c)
    entry = Entry.objects.get(kind="funds.confirmed")
    key = Key.objects.get(fingerprint=entry.author)
    assert (key.kind, key.owner) == ("member", "FI")
    assert Contribution.objects.get(id=c.id).state == "counted"
    # The signature over the envelope verifies under FI's registered public key.
    assert verify_leaf_signature(parse_leaf(bytes(entry.leaf)), bytes(key.public_key), log_origin())
