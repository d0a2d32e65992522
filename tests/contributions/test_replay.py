"""Replay rebuilds every contribution table from the entries alone."""

from __future__ import annotations

from datetime import date

import pytest
from django.contrib.auth import get_user_model

from contributions.compute import import_attest, sacct_import
from contributions.data import data_contribute
from contributions.facilities import facility_update
from contributions.funds import funds_confirm, funds_contribute
from ledger.replay import replay_check
from ledger.verify import verify_ledger
from tests.personas import found_lumi
from tests.steps.contributions import DATASET, JOBS, treaty_from

pytestmark = pytest.mark.slow
User = get_user_model()


def test_replay_rebuilds_facilities_imports_and_contributions(committed_db):
    world = found_lumi()
    people, lumi = world["people"], world["facility"]
    facility_update(
        actor=people["sig_fi"],
        facility=lumi,
        changes={"accounts": {"project_fi": "FI", "project_se": "SE", "x": "NL"}},
    )
    _, _, reported = sacct_import(actor=people["ops"], facility=lumi, data=JOBS)
    import_attest(actor=people["sig_fi"], sacct_import=reported)
    sacct_import(
        actor=people["rec_fi"], facility=lumi, data=JOBS.replace(b"|1|lumi|", b"|11|lumi|")
    )
    # Funds are paid under an agreement in force (a compute pledge of FI and SE).
    treaty_from(
        world,
        date(2026, 1, 1),
        kind="compute_pledge",
        parties=("FI", "SE"),
        signers=("sig_fi", "sig_se"),
    )
    funds = funds_contribute(
        actor=people["rec_se"], amount="12.5", currency="SEK", date_paid="2026-01-01"
    )
    data_contribute(actor=people["rec_fi"], dataset=DATASET)
    # Disputes need an agreement in force between the parties: tests/contributions/
    # test_replay_integrity.py replays them with the treasurer's confirmations.
    funds_confirm(actor=people["ops"], contribution=funds)
    report = replay_check()
    assert report.ok, report.differences
    assert verify_ledger(workers=2).ok
