"""The download gate keeps each decision while the ledger says nothing that could change
it (consortium.access.gate): a range served on a kept decision asks the ledger one
question instead of deciding again; any entry but a download authorisation, from any
process, unsettles it; a decision made before such an entry is never kept after it; a
log rolled back under the process forgets everything."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from consortium.access import gate
from contributions.funds import funds_contribute
from ledger import services
from tests.steps.access import WEIGHTS, authorize, streamed
from tests.steps.api import api_as
from tests.steps.contributions import TODAY

ENTITLEMENT_TABLES = ("consortium_member", "consortium_accessgrant", "consortium_agreementparty")


@pytest.fixture(autouse=True)
def nothing_kept():
    gate.kept.clear()
    yield
    gate.kept.clear()


def decided_afresh(call) -> bool:
    """Whether ``call`` decided the entitlement again (read its facts)."""
    with CaptureQueriesContext(connection) as queries:
        call()
    return any(t in q["sql"] for q in queries.captured_queries for t in ENTITLEMENT_TABLES)


def contribute(lumi, amount: str = "10.5") -> None:
    """An entry that may change a decision: Sweden's funds, recorded."""
    funds_contribute(
        actor=lumi["people"]["rec_se"], amount=amount, currency="SEK", date_paid=TODAY.isoformat()
    )


@pytest.fixture
def fetch(lumi, checkpoint):
    api = api_as(lumi["people"]["rec_se"])
    url = authorize(lumi, checkpoint.digest).json()["files"]["model.safetensors"]

    def fetch_range():
        r = api.get(url, HTTP_RANGE="bytes=100-199")
        assert r.status_code == 206 and streamed(r) == WEIGHTS[100:200]

    return fetch_range


def test_a_kept_decision_serves_the_next_ranges_until_the_ledger_says_more(lumi, fetch):
    assert not decided_afresh(fetch)  # the authorisation's decision, kept
    assert not decided_afresh(fetch)
    contribute(lumi)
    assert decided_afresh(fetch)
    assert not decided_afresh(fetch)


def test_download_authorisations_do_not_unsettle_kept_decisions(lumi, checkpoint, fetch):
    fetch()
    for _ in range(3):
        assert authorize(lumi, checkpoint.digest).status_code == 201
    assert not decided_afresh(fetch)


def test_another_day_is_decided_afresh(lumi, checkpoint):
    from datetime import timedelta

    first = gate.gated("SE", checkpoint.digest, "full_weights", today=TODAY)
    again = gate.gated("SE", checkpoint.digest, "full_weights", today=TODAY)
    assert again is first
    later = gate.gated("SE", checkpoint.digest, "full_weights", today=TODAY + timedelta(days=1))
    assert later is not first and later.decision.allow == first.decision.allow


def test_a_decision_made_before_a_change_is_not_kept_after_it(lumi, checkpoint):
    # One thread looks, and starts deciding from what the ledger says then...
    seen = gate.kept.observe()
    stale = gate.Gated(checkpoint.digest, {}, None)
    # ...meanwhile an entry that may change it is appended, and another thread looks.
    contribute(lumi)
    gate.kept.observe()
    gate.kept.put(("SE", checkpoint.digest, "full_weights", TODAY), seen, stale)
    assert gate.kept.get(("SE", checkpoint.digest, "full_weights", TODAY)) is None
    # Made after the change, a decision is kept.
    fresh = gate.gated("SE", checkpoint.digest, "full_weights", today=TODAY)
    assert gate.gated("SE", checkpoint.digest, "full_weights", today=TODAY) is fresh


def test_a_log_rolled_back_under_the_process_forgets_what_it_kept(lumi, checkpoint):
    class RolledBack(Exception):
        pass

    with pytest.raises(RolledBack), transaction.atomic():
        services.key_register(
            signer=services.log_signer(), kind="service", owner="sampler", name="sampler"
        )
        kept = gate.gated("SE", checkpoint.digest, "full_weights", today=TODAY)
        assert gate.gated("SE", checkpoint.digest, "full_weights", today=TODAY) is kept
        raise RolledBack
    # The entry last seen is gone: nothing kept from that history is used.
    assert gate.gated("SE", checkpoint.digest, "full_weights", today=TODAY) is not kept


def test_an_unknown_checkpoint_is_kept_as_unknown_until_one_is_published(lumi, checkpoint):
    missing = gate.gated("SE", "0" * 64, "full_weights", today=TODAY)
    assert missing.decision is None and missing.files == {}
    assert gate.gated("SE", "0" * 64, "full_weights", today=TODAY) is missing
    contribute(lumi)
    assert gate.gated("SE", "0" * 64, "full_weights", today=TODAY) is not missing
