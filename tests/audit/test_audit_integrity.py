"""The offline verifier follows the appliers: funds count once their treasurer confirms
them (with the figures confirmed), a rejection or a confirmation by another key changes
nothing, an open dispute leaves a contribution counting, and a dispute beyond the bounds
is without effect. A report that counts a pending payment, or holds a disputed one, is
caught."""

from __future__ import annotations

import zipfile
from datetime import UTC, datetime

import pytest

from consortium.audit import exports as audit
from consortium.governance.changes import member_signer, secretariat_signer
from contributions.compute import sacct_import
from contributions.disputes import contribution_dispute
from contributions.funds import funds_confirm, funds_contribute, funds_reject
from contributions.models import Contribution
from ledger import services as ledger
from tests import worlds
from tests.steps.audit import audit_result, forge
from tests.steps.contributions import JOBS, treaty

# Every test here starts from the same world: built once for the module (tests/worlds.py).
lumi = worlds.shared("lumi")

TODAY = datetime.now(UTC).date().isoformat()


@pytest.fixture
def bundle(lumi, tmp_path):
    people = lumi["people"]
    treaty(lumi, treasurer="FI")
    sacct_import(actor=people["rec_fi"], facility=lumi["facility"], data=JOBS)
    paid = funds_contribute(actor=people["rec_se"], amount="1000", currency="SEK", date_paid=TODAY)
    funds_confirm(actor=people["rec_fi"], contribution=paid, amount="900")
    pending = funds_contribute(actor=people["sig_nl"], amount="40", currency="EUR", date_paid=TODAY)
    # Not the treasurer's key: on the record, without effect.
    ledger.entry_append(
        signer=secretariat_signer(),
        kind="funds.confirmed",
        payload={"contribution": str(pending.id), "amount": "40", "currency": "EUR", "date": TODAY},
    )
    bounced = funds_contribute(actor=people["sig_nl"], amount="9", currency="EUR", date_paid=TODAY)
    funds_reject(actor=people["sig_fi"], contribution=bounced, reason="not received")
    compute = Contribution.objects.get(member="SE", kind="compute")
    contribution_dispute(actor=people["sig_nl"], contribution=compute, reason="?")
    ledger.entry_append(
        signer=member_signer("FI"),
        kind="contribution.disputed",
        payload={
            "dispute": "00000000-0000-4000-8000-00000000000c",
            "contribution": str(compute.id),
            "reason": "a second",
        },
    )
    export = audit.audit_export_request(actor=people["aud"])
    audit.audit_export_build(export.id)
    export.refresh_from_db()
    path = tmp_path / "e.zip"
    path.write_bytes(export.file.open("rb").read())
    return path


def test_the_verifier_reaches_the_reports_figures(bundle):
    with zipfile.ZipFile(bundle) as z:
        contributions = z.read("report/contributions.csv").decode().splitlines()
        shares = z.read("report/cost_shares.csv").decode().splitlines()
    assert "SE,funds,1,1,0,0,0,0,0,SEK 900" in contributions
    assert "NL,funds,2,0,1,1,0,0,0,EUR 49" in contributions  # pending, rejected
    assert "SE,compute,1,1,0,0,1,2,0," in contributions  # counted, under one open dispute
    assert shares[0].endswith(",status,held,disputed")
    result = audit_result(bundle)
    assert result.ok, result.failures
    checks = "\n".join(result.checks)
    assert "contributions per member and kind recomputed" in checks
    assert "cost shares and balances of 3 parties recomputed" in checks


def test_a_report_counting_a_pending_payment_is_caught(bundle, tmp_path):
    def count_the_pending_payment(files):
        files["report/contributions.csv"] = files["report/contributions.csv"].replace(
            b"NL,funds,2,0,1,1,", b"NL,funds,2,1,0,1,"
        )
        return files

    forged = forge(bundle.read_bytes(), count_the_pending_payment, tmp_path / "forged.zip")
    failures = "\n".join(audit_result(forged).failures)
    assert "report/contributions.csv: NL funds reads" in failures


def test_a_report_holding_a_disputed_contribution_is_caught(bundle, tmp_path):
    def hold_the_disputed(files):
        lines = files["report/cost_shares.csv"].decode().splitlines()
        se = next(i for i, ln in enumerate(lines) if ",SE," in ln)
        cells = lines[se].split(",")
        cells[-1] = "0.00"  # nothing disputed
        lines[se] = ",".join(cells)
        files["report/cost_shares.csv"] = ("\r\n".join(lines) + "\r\n").encode()
        return files

    forged = forge(bundle.read_bytes(), hold_the_disputed, tmp_path / "forged.zip")
    failures = "\n".join(audit_result(forged).failures)
    assert "report/cost_shares.csv" in failures and " SE reads" in failures
