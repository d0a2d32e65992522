"""A treasurer holding its own key confirms or rejects payments by submitting entries it
signs itself; the checks are the service's."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from contributions.funds import funds_contribute
from ledger import services as ledger_services
from ledger.keys import EntrySigner
from ledger.services import Entry, log_signer
from tests import worlds
from tests.steps.contributions import post_signed, treaty

# Every test here starts from the same world: built once for the module (tests/worlds.py).
lumi = worlds.shared("lumi")

TODAY = datetime.now(UTC).date().isoformat()


@pytest.fixture
def finland_holds_its_key(lumi):
    treaty(lumi, treasurer="FI")
    key = EntrySigner.generate("fi-hsm")
    ledger_services.key_register(
        signer=log_signer(), kind="member", owner="FI", name="fi-hsm", public_key=key.public_key
    )
    return key


def test_the_treasurer_confirms_with_its_own_key(lumi, finland_holds_its_key):
    key = finland_holds_its_key
    c = funds_contribute(
        actor=lumi["people"]["rec_se"], amount="10", currency="EUR", date_paid=TODAY
    )
    payload = {"contribution": str(c.id), "amount": "10", "currency": "EUR", "date": TODAY}
    before = Entry.objects.count()
    # Sweden's recorder cannot carry Finland's key; a malformed confirmation is a 400.
    assert post_signed(lumi["people"]["rec_se"], key, "funds.confirmed", payload).status_code == 403
    bad = post_signed(
        lumi["people"]["rec_fi"], key, "funds.confirmed", {**payload, "amount": "ten"}
    )
    assert bad.status_code == 400 and "amount" in bad.json()["detail"]
    assert Entry.objects.count() == before
    r = post_signed(lumi["people"]["rec_fi"], key, "funds.confirmed", payload)
    assert r.status_code == 201, r.content
    c.refresh_from_db()
    assert c.state == "counted"
    again = post_signed(lumi["people"]["rec_fi"], key, "funds.confirmed", payload)
    assert again.status_code == 409


def test_the_treasurer_rejects_with_its_own_key_and_no_one_else_does(lumi, finland_holds_its_key):
    c = funds_contribute(
        actor=lumi["people"]["rec_se"], amount="10", currency="EUR", date_paid=TODAY
    )
    stranger = EntrySigner.generate("nl-hsm")
    ledger_services.key_register(
        signer=log_signer(),
        kind="member",
        owner="NL",
        name="nl-hsm",
        public_key=stranger.public_key,
    )
    payload = {"contribution": str(c.id), "reason": "not received"}
    assert (
        post_signed(lumi["people"]["sig_nl"], stranger, "funds.rejected", payload).status_code
        == 403
    )
    r = post_signed(lumi["people"]["sig_fi"], finland_holds_its_key, "funds.rejected", payload)
    assert r.status_code == 201, r.content
    c.refresh_from_db()
    assert c.state == "rejected"
