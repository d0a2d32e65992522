"""Compute contributions: facilities, SLURM imports attested by the facility's key, and
who may do what."""

from __future__ import annotations

from decimal import Decimal

import pytest

from consortium.governance.changes import GovernanceError
from contributions.compute import import_attest, sacct_import
from contributions.facilities import facility_register
from contributions.models import Contribution, Facility, SacctImport
from contributions.selectors import facility_key
from ledger import services as ledger_services
from ledger.services import Entry, Key, hosted_signer
from tests import worlds
from tests.steps.contributions import JOBS, export

# Every test here starts from the same world: built once for the module (tests/worlds.py).
lumi = worlds.shared("lumi")


def test_a_facility_is_registered_with_its_own_key(lumi):
    f = lumi["facility"]
    assert (f.operator_id, f.timezone, f.accounts["project_se"]) == ("FI", "Europe/Helsinki", "SE")
    key = facility_key(f)
    assert (key.kind, key.owner, key.custody) == ("facility", "lumi", "hosted")


def test_an_import_records_the_attested_aggregates_and_the_exports_hash(lumi):
    reading, _, imported = sacct_import(
        actor=lumi["people"]["rec_fi"], facility=lumi["facility"], data=JOBS
    )
    assert imported.attested_in == imported.recorded_in  # signed by the facility's key
    by = {(c.member_id, c.accelerator): c for c in Contribution.objects.all()}
    assert by[("FI", "mi250x")].gpu_hours == Decimal("16")
    assert by[("SE", "h100")].gpu_hours == Decimal("2")
    assert {c.state for c in by.values()} == {"counted"}
    assert imported.left_out == {
        "accounts not mapped to a member in good standing": 1,
        "not finished (RUNNING)": 1,
    }
    entry = Entry.objects.get(kind="compute.imported")
    assert (
        entry.payload["export_sha256"] == reading.sha256
        and len(entry.payload["contributions"]) == 2
    )
    assert Key.objects.get(fingerprint=entry.author).kind == "facility"


def test_a_dry_run_records_nothing(lumi):
    before = Entry.objects.count()
    _, rows, imported = sacct_import(
        actor=lumi["people"]["rec_fi"], facility=lumi["facility"], data=JOBS, dry_run=True
    )
    assert imported is None and len(rows) == 2 and Entry.objects.count() == before


def test_the_same_export_twice_is_refused(lumi):
    sacct_import(actor=lumi["people"]["rec_fi"], facility=lumi["facility"], data=JOBS)
    before = Entry.objects.count()
    with pytest.raises(GovernanceError, match="imported already") as exc:
        sacct_import(actor=lumi["people"]["rec_fi"], facility=lumi["facility"], data=JOBS)
    assert exc.value.status == 409 and Entry.objects.count() == before


def test_a_malformed_line_is_named_and_nothing_is_recorded(lumi):
    bad = JOBS + b"6|6|lumi|standard-g|project_fi|COMPLETED|x\n"
    before = Entry.objects.count()
    with pytest.raises(GovernanceError, match="line 7: expected 11 fields, found 7"):
        sacct_import(actor=lumi["people"]["rec_fi"], facility=lumi["facility"], data=bad)
    assert Entry.objects.count() == before and not SacctImport.objects.exists()


@pytest.mark.parametrize("who", ["rec_se", "sig_se", "obs_nl", "aud"])
def test_only_the_facilitys_operator_imports_for_it(lumi, who):
    with pytest.raises(GovernanceError, match="only the delegates of FI act for lumi") as exc:
        sacct_import(actor=lumi["people"][who], facility=lumi["facility"], data=JOBS)
    assert exc.value.status == 403


def test_an_import_by_the_secretariat_is_reported_until_the_facility_attests(lumi):
    _, _, imported = sacct_import(actor=lumi["people"]["ops"], facility=lumi["facility"], data=JOBS)
    assert imported.attested_in is None
    assert set(Contribution.objects.values_list("state", flat=True)) == {"reported"}
    with pytest.raises(GovernanceError, match="only the facility attests"):
        import_attest(actor=lumi["people"]["ops"], sacct_import=imported)
    import_attest(actor=lumi["people"]["sig_fi"], sacct_import=imported)
    assert set(Contribution.objects.values_list("state", flat=True)) == {"counted"}
    with pytest.raises(GovernanceError, match="attested already"):
        import_attest(actor=lumi["people"]["sig_fi"], sacct_import=imported)


def test_an_attestation_by_a_key_that_is_not_the_facilitys_changes_nothing(lumi):
    _, _, imported = sacct_import(actor=lumi["people"]["ops"], facility=lumi["facility"], data=JOBS)
    facility_register(
        actor=lumi["people"]["ops"],
        record={
            "code": "other",
            "name": "O",
            "operator": "SE",
            "country": "SE",
            "default_accelerator": "a100",
        },
    )
    other_key = hosted_signer(facility_key(Facility.objects.get(code="other")).fingerprint)
    ledger_services.entry_append(
        signer=other_key,
        kind="compute.attested",
        payload={"import": str(imported.id), "export_sha256": imported.export_sha256},
    )
    imported.refresh_from_db()
    assert imported.attested_in is None
    assert set(Contribution.objects.values_list("state", flat=True)) == {"reported"}


def test_a_job_using_two_accelerator_types_is_one_allocation_of_the_import(lumi):
    two = export(
        "7|7|lumi|standard-g|project_fi|COMPLETED|2026-03-01T10:00:00|2026-03-01T10:00:00|"
        "2026-03-01T11:00:00|01:00:00|gres/gpu=2,gres/gpu:a100_3g.20gb=1,gres/gpu:a100_1g.5gb=1",
        "8|8|lumi|standard-g|project_xx|COMPLETED|2026-03-01T10:00:00|2026-03-01T10:00:00|"
        "2026-03-01T11:00:00|01:00:00|gres/gpu=2,gres/gpu:a100_3g.20gb=1,gres/gpu:a100_1g.5gb=1",
    )
    _, rows, imported = sacct_import(
        actor=lumi["people"]["rec_fi"], facility=lumi["facility"], data=two
    )
    assert imported.allocations == 1 and len(rows) == 2  # one job, on two slice types
    assert imported.left_out == {"accounts not mapped to a member in good standing": 1}


def test_an_allocation_listed_again_by_a_later_export_is_not_counted_twice(lumi):
    # September's export, then October's: job 1 ran across the end of the month, so
    # both list it; and a copy of September's with other line endings.
    sacct_import(actor=lumi["people"]["rec_fi"], facility=lumi["facility"], data=JOBS)
    october = JOBS.replace(b"|5|lumi|", b"|55|lumi|").replace(b"project_xx", b"project_fi")
    _, rows, imported = sacct_import(
        actor=lumi["people"]["rec_fi"], facility=lumi["facility"], data=october
    )
    assert imported.left_out["counted by an earlier import of this facility"] == 2
    assert [(r["member"], r["gpu_seconds"]) for r in rows] == [("FI", 2 * 3600)]  # job 55 only
    with pytest.raises(GovernanceError, match="every allocation in this export was counted"):
        sacct_import(
            actor=lumi["people"]["rec_fi"],
            facility=lumi["facility"],
            data=JOBS.replace(b"\n", b"\r\n"),
        )
