"""Contributions signed by their authors' own keys: a facility that holds its key attests
an import; a member that holds its key records funds and data."""

from __future__ import annotations

import base64
import uuid

import pytest

from contributions.compute import sacct_import
from contributions.facilities import facility_register
from contributions.models import Contribution, Facility
from ledger.core.envelope import new_envelope, sign_envelope
from ledger.keys import EntrySigner
from ledger.models import Entry
from tests import worlds
from tests.consortium.test_proposals_api import _client
from tests.contributions.test_compute import JOBS
from tests.contributions.test_data_funds import DATASET, paid_under_a_treaty

# Every test here starts from the same world: built once for the module (tests/worlds.py).
lumi = worlds.shared("lumi")


def _post(user, key, kind, payload):
    env = new_envelope(kind=kind, payload=payload, author=key.fingerprint)
    sig = base64.b64encode(sign_envelope(env, key.signing_key).signature).decode()
    return _client(user).post(
        "/api/v1/ledger/entries", {"envelope": env, "signature": sig}, format="json"
    )


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
    assert _post(lumi["people"]["rec_se"], key, "compute.attested", payload).status_code == 403
    wrong = {**payload, "export_sha256": "0" * 64}
    assert _post(lumi["people"]["rec_fi"], key, "compute.attested", wrong).status_code == 409
    r = _post(lumi["people"]["rec_fi"], key, "compute.attested", payload)
    assert r.status_code == 201, r.content
    assert set(Contribution.objects.filter(facility=facility).values_list("state", flat=True)) == {
        "counted"
    }


def test_another_facilitys_key_cannot_attest(lumi, puhti):
    facility, _ = puhti
    _, _, imported = sacct_import(actor=lumi["people"]["rec_fi"], facility=facility, data=JOBS)
    stranger = EntrySigner.generate("stranger")
    payload = {"import": str(imported.id), "export_sha256": imported.export_sha256}
    r = _post(lumi["people"]["rec_fi"], stranger, "compute.attested", payload)
    assert r.status_code == 400 and "not a registered key" in r.json()["detail"]


def test_a_member_holding_its_key_records_funds_and_data(lumi):
    paid_under_a_treaty(lumi)
    from ledger import services as ledger_services
    from ledger.keys import log_signer

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
    assert _post(lumi["people"]["rec_se"], key, "funds.contributed", funds).status_code == 201
    assert Contribution.objects.get(id=funds["contribution"]).member_id == "SE"
    before = Entry.objects.count()
    bad = {**funds, "contribution": str(uuid.uuid4()), "amount": "NaN"}
    r = _post(lumi["people"]["rec_se"], key, "funds.contributed", bad)
    assert (
        r.status_code == 400 and "amount" in r.json()["detail"] and Entry.objects.count() == before
    )
    data = {"contribution": str(uuid.uuid4()), "dataset": {**DATASET, "licence": "GPL-9.0"}}
    r = _post(lumi["people"]["rec_se"], key, "data.contributed", data)
    assert r.status_code == 400 and "SPDX" in r.json()["detail"]
    # Finland's recorder cannot record with Sweden's key.
    other = {**funds, "contribution": str(uuid.uuid4())}
    assert _post(lumi["people"]["rec_fi"], key, "funds.contributed", other).status_code == 403
