"""Contributions signed by their authors' own keys: a facility that holds its key attests
an import; a member that holds its key records funds and data."""

from __future__ import annotations

import uuid

import pytest

from contributions.compute import sacct_import
from contributions.facilities import facility_register
from contributions.models import Contribution, Facility
from ledger.keys import EntrySigner
from ledger.services import Entry
from tests import worlds
from tests.steps.contributions import DATASET, JOBS, paid_under_a_treaty, post_signed

# Every test here starts from the same world: built once for the module (tests/worlds.py).
lumi = worlds.shared("lumi")


@pytest.fixture
def puhti(lumi):
    """A second Finnish facility that holds its own key."""
    key = EntrySigner.generate("puhti")
    facility_register(
        actor=lumi["people"]["ops"],
        public_key=key.public_key,
        record={
            "code": "puhti",
            "name": "Puhti",
            "operator": "FI",
            "country": "FI",
            "default_accelerator": "v100",
            "accounts": {"project_fi": "FI"},
        },
    )
    return Facility.objects.get(code="puhti"), key


def test_a_facility_holding_its_key_attests_a_reported_import(lumi, puhti):
    facility, key = puhti
    _, _, imported = sacct_import(actor=lumi["people"]["rec_fi"], facility=facility, data=JOBS)
    assert imported.attested_in is None  # signed by Finland's key: reported
    payload = {"import": str(imported.id), "export_sha256": imported.export_sha256}
    assert (
        post_signed(lumi["people"]["rec_se"], key, "compute.attested", payload).status_code == 403
    )
    wrong = {**payload, "export_sha256": "0" * 64}
    assert post_signed(lumi["people"]["rec_fi"], key, "compute.attested", wrong).status_code == 409
    r = post_signed(lumi["people"]["rec_fi"], key, "compute.attested", payload)
    assert r.status_code == 201, r.content
    assert set(Contribution.objects.filter(facility=facility).values_list("state", flat=True)) == {
        "counted"
    }


def test_another_facilitys_key_cannot_attest(lumi, puhti):
    facility, _ = puhti
    _, _, imported = sacct_import(actor=lumi["people"]["rec_fi"], facility=facility, data=JOBS)
    stranger = EntrySigner.generate("stranger")
    payload = {"import": str(imported.id), "export_sha256": imported.export_sha256}
    r = post_signed(lumi["people"]["rec_fi"], stranger, "compute.attested", payload)
    assert r.status_code == 400 and "not a registered key" in r.json()["detail"]


def test_a_member_holding_its_key_records_funds_and_data(lumi):
    paid_under_a_treaty(lumi)
    from ledger import services as ledger_services
    from ledger.services import log_signer

    key = EntrySigner.generate("se-hsm")
    ledger_services.key_register(
        signer=log_signer(), kind="member", owner="SE", name="se-hsm", public_key=key.public_key
    )
    funds = {
        "contribution": str(uuid.uuid4()),
        "amount": "12.5",
        "currency": "SEK",
        "date": "2026-02-01",
        "reference": "",
    }
    assert post_signed(lumi["people"]["rec_se"], key, "funds.contributed", funds).status_code == 201
    assert Contribution.objects.get(id=funds["contribution"]).member_id == "SE"
    before = Entry.objects.count()
    bad = {**funds, "contribution": str(uuid.uuid4()), "amount": "NaN"}
    r = post_signed(lumi["people"]["rec_se"], key, "funds.contributed", bad)
    assert (
        r.status_code == 400 and "amount" in r.json()["detail"] and Entry.objects.count() == before
    )
    data = {"contribution": str(uuid.uuid4()), "dataset": {**DATASET, "licence": "GPL-9.0"}}
    r = post_signed(lumi["people"]["rec_se"], key, "data.contributed", data)
    assert r.status_code == 400 and "SPDX" in r.json()["detail"]
    # Finland's recorder cannot record with Sweden's key.
    other = {**funds, "contribution": str(uuid.uuid4())}
    assert post_signed(lumi["people"]["rec_fi"], key, "funds.contributed", other).status_code == 403
