"""A dataset's DUO terms keep the value DUO couples them with (its disease, region,
time limit, ...): recorded on the ledger with it, refused without it."""

from __future__ import annotations

import copy

from contributions.data import data_contribute
from ledger.services import Entry
from tests.steps.api import api_as
from tests.steps.contributions import DATASET
from tests.steps.signin import sign_in


def test_a_dataset_records_its_disease_and_region(lumi):
    dataset = copy.deepcopy(DATASET)
    dataset["duo"] = {
        "permission": {"code": "DUO:0000007", "disease": "MONDO:0004992"},
        "modifiers": [{"code": "DUO:0000022", "region": "EEA"}, "DUO:0000018"],
    }
    c = data_contribute(actor=lumi["people"]["rec_fi"], dataset=dataset)
    assert c.dataset["duo"] == dataset["duo"]
    assert Entry.objects.get(kind="data.contributed").payload["dataset"]["duo"] == dataset["duo"]


def test_a_geographic_restriction_without_its_region_is_a_400_and_nothing_is_written(lumi):
    dataset = copy.deepcopy(DATASET)
    dataset["duo"]["modifiers"] = ["DUO:0000018", "DUO:0000022"]
    before = Entry.objects.count()
    r = api_as(lumi["people"]["rec_fi"]).post(
        "/api/v1/contributions/data", {"dataset": dataset}, format="json"
    )
    assert r.status_code == 400 and r["Content-Type"] == "application/problem+json"
    assert r.json()["detail"].startswith(
        "dataset.duo.modifiers[1]: DUO:0000022 (geographical restriction) needs its region"
    )
    assert Entry.objects.count() == before


def test_a_time_limit_without_its_months_is_refused(lumi):
    dataset = copy.deepcopy(DATASET)
    dataset["duo"]["modifiers"] = [{"code": "DUO:0000025"}]
    before = Entry.objects.count()
    r = api_as(lumi["people"]["rec_fi"]).post(
        "/api/v1/contributions/data", {"dataset": dataset}, format="json"
    )
    assert r.status_code == 400 and "needs its months" in r.json()["detail"]
    assert Entry.objects.count() == before


def test_the_admin_form_records_a_terms_value_and_refuses_a_term_without_it(client, lumi):
    sign_in(client, lumi["people"]["rec_fi"])
    form = {
        "name": "Registry",
        "description": "",
        "manifest_sha256": "ab" * 32,
        "size_bytes": 10,
        "files": 1,
        "records": 1000,
        "licence": "LicenseRef-NLOD-2.0",
        "permission": "DUO:0000042",
        "modifiers": ["DUO:0000018", "DUO:0000022"],
        "residency": "FI",
        "access_mode": "federated",
    }
    bad = client.post("/admin/contributions/contribution/data/", form)
    assert bad.status_code == 200 and "needs its region" in bad.content.decode()
    assert not Entry.objects.filter(kind="data.contributed").exists()
    ok = client.post(
        "/admin/contributions/contribution/data/",
        {**form, "duo_values": '{"DUO:0000022": {"region": "FI"}}'},
    )
    assert ok.status_code == 302
    assert Entry.objects.get(kind="data.contributed").payload["dataset"]["duo"] == {
        "permission": "DUO:0000042",
        "modifiers": ["DUO:0000018", {"code": "DUO:0000022", "region": "FI"}],
    }


def test_a_datasets_page_names_its_licences_and_its_data_use_in_words(client, lumi):
    dataset = copy.deepcopy(DATASET)
    dataset["licence"] = "CC-BY-4.0 AND LicenseRef-etalab-2.0"
    dataset["duo"] = {
        "permission": {"code": "DUO:0000007", "disease": "MONDO:0004992"},
        "modifiers": [{"code": "DUO:0000022", "region": "EEA"}, "DUO:0000018"],
    }
    c = data_contribute(actor=lumi["people"]["rec_fi"], dataset=dataset)
    sign_in(client, lumi["people"]["rec_fi"])
    response = client.get(f"/admin/contributions/contribution/{c.pk}/change/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Creative Commons Attribution 4.0 International" in page
    assert "LicenseRef-etalab-2.0" in page
    assert "disease specific research" in page and "MONDO:0004992" in page
    assert "Use is limited to the named geographical region." in page
    assert "not-for-profit" in page
