"""Data and funds contributions, and disputes: recorded by a member's recorder or
signatory with its key, checked field by field; a dispute leaves them as they were until
it is upheld."""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from consortium.governance.changes import GovernanceError
from contributions.data import data_contribute
from contributions.disputes import contribution_dispute, dispute_resolve
from contributions.funds import funds_confirm, funds_contribute
from contributions.models import Contribution
from ledger.services import Entry
from tests import worlds
from tests.steps.contributions import DATASET, paid_under_a_treaty

# Every test here starts from the same world: built once for the module (tests/worlds.py).
lumi = worlds.shared("lumi")


def test_a_recorder_records_a_dataset_known_by_its_manifest(lumi):
    c = data_contribute(actor=lumi["people"]["rec_fi"], dataset=DATASET)
    assert (c.kind, c.member_id, c.state, c.tokens) == ("data", "FI", "counted", 96_000_000_000)
    assert c.dataset["manifest_sha256"] == "ab" * 32
    assert Entry.objects.get(kind="data.contributed").payload["dataset"] == DATASET


BAD_DATASETS = [
    (lambda d: d.update(licence="CC-BY-5.0"), "not an SPDX licence id"),
    (lambda d: d.update(licence="cc-by-4.0"), "write it as SPDX does: CC-BY-4.0"),
    (lambda d: d["duo"].update(permission="DUO:0000018"), "not a DUO data use permission"),
    (lambda d: d["duo"].update(modifiers=["DUO:9999999"]), "not a DUO data use modifier"),
    (lambda d: d.update(residency="XX"), "not an ISO 3166-1 alpha-2"),
    (lambda d: d.update(access_mode="emailed"), "dataset.access_mode"),
    (lambda d: d.update(manifest_sha256="AB" * 32), "manifest_sha256: 64 lowercase hex"),
    (lambda d: d.update(size_bytes=-1), "dataset.size_bytes: a whole number"),
    (lambda d: d.update(tokens="many"), "dataset.tokens: a whole number"),
    (lambda d: d.pop("tokens"), "give its tokens or its records"),
    (lambda d: d.update(colour="blue"), "unknown field colour"),
    (lambda d: d.pop("licence"), "missing licence"),
]


@pytest.mark.parametrize(("mutate", "message"), BAD_DATASETS)
def test_bad_datasets_are_refused_and_nothing_is_written(lumi, mutate, message):
    dataset = copy.deepcopy(DATASET)
    mutate(dataset)
    before = Entry.objects.count()
    with pytest.raises(GovernanceError, match=re.escape(message)):
        data_contribute(actor=lumi["people"]["rec_fi"], dataset=dataset)
    assert Entry.objects.count() == before


def test_funds_are_recorded_as_exact_decimals(lumi):
    paid_under_a_treaty(lumi)
    c = funds_contribute(
        actor=lumi["people"]["sig_se"],
        amount="1250000.50",
        currency="SEK",
        date_paid="2026-03-31",
        reference="INV-7",
    )
    assert (c.member_id, c.amount, c.currency) == ("SE", Decimal("1250000.50"), "SEK")


@pytest.mark.parametrize(
    ("amount", "currency", "day", "message"),
    [
        ("-5", "EUR", "2026-01-01", "amount"),
        ("NaN", "EUR", "2026-01-01", "amount"),
        ("1e6", "EUR", "2026-01-01", "amount"),
        ("0", "EUR", "2026-01-01", "positive"),
        (100, "EUR", "2026-01-01", "decimal written as a string"),
        ("10", "EURO", "2026-01-01", "ISO 4217"),
        ("10", "XYZ", "2026-01-01", "ISO 4217"),
        ("10", "EUR", "2026-02-30", "the day paid"),
        (
            "10",
            "EUR",
            (datetime.now(UTC) + timedelta(days=2)).date().isoformat(),
            "not in the future",
        ),
    ],
)
def test_bad_funds_are_refused(lumi, amount, currency, day, message):
    before = Entry.objects.count()
    with pytest.raises(GovernanceError, match=message):
        funds_contribute(
            actor=lumi["people"]["rec_se"], amount=amount, currency=currency, date_paid=day
        )
    assert Entry.objects.count() == before


@pytest.mark.parametrize("who", ["obs_nl", "aud", "ops"])
def test_only_a_members_recorder_or_signatory_records(lumi, who):
    with pytest.raises(GovernanceError, match="recorder or signatory") as exc:
        data_contribute(actor=lumi["people"][who], dataset=DATASET)
    assert exc.value.status == 403


def test_a_retry_with_the_same_idempotency_key_records_once(lumi):
    paid_under_a_treaty(lumi)
    a = funds_contribute(
        actor=lumi["people"]["rec_se"],
        amount="10",
        currency="EUR",
        date_paid="2026-01-01",
        idempotency_key="pay-1",
    )
    b = funds_contribute(
        actor=lumi["people"]["rec_se"],
        amount="10",
        currency="EUR",
        date_paid="2026-01-01",
        idempotency_key="pay-1",
    )
    assert a.id == b.id and Contribution.objects.count() == 1
    with pytest.raises(GovernanceError, match="Idempotency-Key"):
        funds_contribute(
            actor=lumi["people"]["rec_se"],
            amount="11",
            currency="EUR",
            date_paid="2026-01-01",
            idempotency_key="pay-1",
        )


def test_a_disputed_contribution_keeps_its_state_until_resolved(lumi):
    paid_under_a_treaty(lumi)
    c = funds_contribute(
        actor=lumi["people"]["rec_se"], amount="10", currency="EUR", date_paid="2026-01-01"
    )
    funds_confirm(actor=lumi["people"]["ops"], contribution=c)
    d = contribution_dispute(
        actor=lumi["people"]["sig_fi"], contribution=c, reason="never received"
    )
    c.refresh_from_db()
    assert (c.state, c.disputed, d.member_id) == ("counted", True, "FI")
    with pytest.raises(GovernanceError, match="the secretariat resolves"):
        dispute_resolve(
            actor=lumi["people"]["sig_se"], dispute=d, outcome="dismissed", resolution="x"
        )
    dispute_resolve(
        actor=lumi["people"]["ops"],
        dispute=d,
        outcome="dismissed",
        resolution="bank statement shows it",
    )
    c.refresh_from_db()
    assert (c.state, c.disputed) == ("counted", False)
    d2 = contribution_dispute(actor=lumi["people"]["sig_fi"], contribution=c, reason="again")
    dispute_resolve(
        actor=lumi["people"]["ops"],
        dispute=d2,
        outcome="upheld",
        resolution="the payment was reversed",
    )
    c.refresh_from_db()
    assert (c.state, c.disputed) == ("void", False)
    with pytest.raises(GovernanceError, match="the contribution is void"):
        contribution_dispute(actor=lumi["people"]["sig_fi"], contribution=c, reason="x")


@pytest.mark.parametrize("who", ["rec_fi", "obs_nl", "aud", "ops"])
def test_only_a_members_signatory_disputes(lumi, who):
    paid_under_a_treaty(lumi)
    c = funds_contribute(
        actor=lumi["people"]["rec_se"], amount="10", currency="EUR", date_paid="2026-01-01"
    )
    with pytest.raises(GovernanceError) as exc:
        contribution_dispute(actor=lumi["people"][who], contribution=c, reason="x")
    assert exc.value.status == 403
