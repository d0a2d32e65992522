"""Replay rebuilds every contribution table from the entries alone."""

from __future__ import annotations

from datetime import date

import pytest
from django.contrib.auth import get_user_model

from consortium.governance import members as governance
from contributions.compute import import_attest, sacct_import
from contributions.data import data_contribute
from contributions.facilities import facility_register, facility_update
from contributions.funds import funds_confirm, funds_contribute
from ledger.replay import replay_check
from ledger.verify import verify_ledger
from tests.contributions.test_compute import JOBS
from tests.contributions.test_data_funds import DATASET
from tests.contributions.test_funds_validation import treaty_from

pytestmark = pytest.mark.slow
User = get_user_model()


def test_replay_rebuilds_facilities_imports_and_contributions(committed_db):
    governance.consortium_found(
        name="C", members=[governance.member_record(code=c) for c in ("FI", "SE", "NL")]
    )
    people = {
        n: User.objects.create_user(n) for n in ("ops", "rec_fi", "sig_fi", "rec_se", "sig_se")
    }
    governance.seat_assign(actor=None, user=people["ops"], role="secretariat")
    for name, role, member in (
        ("rec_fi", "recorder", "FI"),
        ("sig_fi", "signatory", "FI"),
        ("rec_se", "recorder", "SE"),
        ("sig_se", "signatory", "SE"),
    ):
        governance.seat_assign(actor=people["ops"], user=people[name], role=role, member=member)
    lumi = facility_register(
        actor=people["ops"],
        record={
            "code": "lumi",
            "name": "LUMI",
            "operator": "FI",
            "country": "FI",
            "timezone": "Europe/Helsinki",
            "default_accelerator": "mi250x",
            "partitions": {"h100-g": "h100"},
            "accounts": {"project_fi": "FI", "project_se": "SE"},
        },
    )
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
        {"people": people},
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
