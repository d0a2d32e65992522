"""Contributions through the REST API: who may do what, bad input as problems with
nothing written, and the cost-share report as JSON and CSV."""

from __future__ import annotations

import hashlib
import uuid
from datetime import date

import pytest

from consortium.governance.models import Member
from contributions.models import Contribution
from ledger.services import Entry
from tests import worlds
from tests.steps.api import api_as
from tests.steps.contributions import DATASET, JOBS, deliver, paid_under_a_treaty, treaty

# Every test here starts from the same world: built once for the module (tests/worlds.py).
lumi = worlds.shared("lumi")

PROBLEM = "application/problem+json"


def test_a_recorder_imports_an_export_and_a_retry_is_refused(lumi):
    api = api_as(lumi["people"]["rec_fi"])
    dry = api.post("/api/v1/facilities/lumi/imports?dry_run=true", JOBS, content_type="text/plain")
    assert dry.status_code == 200 and dry.json()["import"] is None
    assert dry.json()["export_sha256"] == hashlib.sha256(JOBS).hexdigest()
    r = api.post("/api/v1/facilities/lumi/imports", JOBS, content_type="text/plain")
    assert r.status_code == 201 and r.json()["import"]["attested_in"] is not None
    again = api.post("/api/v1/facilities/lumi/imports", JOBS, content_type="text/plain")
    assert again.status_code == 409 and "imported already" in again.json()["detail"]


def test_a_malformed_export_is_a_400_naming_the_line(lumi):
    before = Entry.objects.count()
    r = api_as(lumi["people"]["rec_fi"]).post(
        "/api/v1/facilities/lumi/imports", JOBS + b"9|9|lumi|x\n", content_type="text/plain"
    )
    assert r.status_code == 400 and "line 7" in r.json()["detail"]
    assert r["Content-Type"] == PROBLEM and Entry.objects.count() == before


@pytest.mark.parametrize("who", ["rec_se", "sig_se", "obs_nl", "aud"])
def test_only_the_operators_delegates_import(lumi, who):
    before = Entry.objects.count()
    r = api_as(lumi["people"][who]).post(
        "/api/v1/facilities/lumi/imports", JOBS, content_type="text/plain"
    )
    assert r.status_code == 403 and Entry.objects.count() == before


def test_funds_data_and_the_scoped_list(lumi):
    paid_under_a_treaty(lumi)
    se, fi = api_as(lumi["people"]["rec_se"]), api_as(lumi["people"]["rec_fi"])
    r = se.post(
        "/api/v1/contributions/funds",
        {"amount": "100.50", "currency": "SEK", "date": "2026-01-02"},
        format="json",
    )
    assert r.status_code == 201 and r.json()["amount"] == "100.500000"
    assert (
        fi.post("/api/v1/contributions/data", {"dataset": DATASET}, format="json").status_code
        == 201
    )
    assert [c["member"] for c in se.get("/api/v1/contributions").json()["results"]] == ["SE"]
    assert [c["member"] for c in fi.get("/api/v1/contributions").json()["results"]] == ["FI"]
    everyone = api_as(lumi["people"]["aud"]).get("/api/v1/contributions").json()["results"]
    assert sorted(c["member"] for c in everyone) == ["FI", "SE"]
    assert se.get("/api/v1/contributions?kind=gold").status_code == 400


def test_every_contribution_is_listed_a_page_at_a_time_past_a_thousand(lumi):
    """The list stopped at 1,000 without saying so; now every one is on a page, in the
    order recorded, however many share an entry (an import records many at once)."""
    members = {code: Member.objects.get(code=code) for code in ("FI", "SE")}
    Contribution.objects.bulk_create(
        Contribution(
            id=uuid.uuid4(),
            kind="funds",
            member=members["FI" if i % 3 else "SE"],
            state="pending",
            recorded_in=100_000 + i // 300,
            recorded_at="2026-01-01T00:00:00Z",
            delivered_on=date(2026, 1, 1),
            amount=1,
            currency="EUR",
        )
        for i in range(1001)
    )
    api = api_as(lumi["people"]["aud"])
    first = api.get("/api/v1/contributions?page_size=1000").json()
    second = api.get(first["next"]).json()
    assert (len(first["results"]), len(second["results"]), second["next"]) == (1000, 1, None)
    url, seen = "/api/v1/contributions?page_size=250&member=FI", []
    while url:
        page = api.get(url).json()
        seen, url = seen + page["results"], page["next"]
    assert len(seen) == len({c["id"] for c in seen}) == 667
    assert [c["recorded_in"] for c in seen] == sorted(
        (c["recorded_in"] for c in seen), reverse=True
    )
    r = api.get("/api/v1/contributions?from=2026-13-01")
    assert r.status_code == 400 and r.json()["detail"] == "from is a date, YYYY-MM-DD"


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"amount": "NaN", "currency": "EUR", "date": "2026-01-01"}, "amount"),
        ({"amount": "-1", "currency": "EUR", "date": "2026-01-01"}, "amount"),
        ({"amount": "1", "currency": "ECU", "date": "2026-01-01"}, "ISO 4217"),
        ({"amount": "1.0000001", "currency": "EUR", "date": "2026-01-01"}, "6 decimal places"),
    ],
)
def test_bad_funds_are_problems_and_write_nothing(lumi, body, detail):
    before = Entry.objects.count()
    r = api_as(lumi["people"]["rec_se"]).post("/api/v1/contributions/funds", body, format="json")
    assert r.status_code == 400 and detail in r.json()["detail"] and Entry.objects.count() == before


def test_a_dispute_and_its_resolution(lumi):
    paid_under_a_treaty(lumi)
    c = (
        api_as(lumi["people"]["rec_se"])
        .post(
            "/api/v1/contributions/funds",
            {"amount": "5", "currency": "EUR", "date": "2026-01-02"},
            format="json",
        )
        .json()
    )
    d = api_as(lumi["people"]["sig_fi"]).post(
        f"/api/v1/contributions/{c['id']}/disputes", {"reason": "not received"}, format="json"
    )
    disputed = Contribution.objects.get(id=c["id"])
    assert d.status_code == 201 and (disputed.state, disputed.disputed) == ("pending", True)
    url = f"/api/v1/disputes/{d.json()['id']}/resolution"
    body = {"outcome": "upheld", "resolution": "reversed"}
    assert api_as(lumi["people"]["sig_se"]).post(url, body, format="json").status_code == 403
    assert api_as(lumi["people"]["ops"]).post(url, body, format="json").status_code == 200
    assert Contribution.objects.get(id=c["id"]).state == "void"


def test_the_cost_share_report_as_json_and_csv(lumi):
    a = treaty(lumi)
    deliver(lumi)
    api = api_as(lumi["people"]["obs_nl"])
    r = api.get(f"/api/v1/agreements/{a.id}/cost-shares")
    assert r.status_code == 200 and r.json()["total_delivered"] == "133.80"
    csv = api.get(f"/api/v1/agreements/{a.id}/cost-shares?output=csv&from=2026-01-01")
    assert csv.status_code == 200 and csv["Content-Type"].startswith("text/csv")
    lines = csv.content.decode().splitlines()
    assert lines[0].startswith("member,name,share,obligation") and len(lines) == 4
    assert api.get(f"/api/v1/agreements/{a.id}/cost-shares?from=soon").status_code == 400


def test_facilities_are_registered_by_the_secretariat(lumi):
    body = {
        "code": "leonardo",
        "name": "Leonardo",
        "operator": "SE",
        "country": "IT",
        "default_accelerator": "a100",
        "accounts": {"se_ai": "SE"},
    }
    assert (
        api_as(lumi["people"]["sig_se"]).post("/api/v1/facilities", body, format="json").status_code
        == 403
    )
    r = api_as(lumi["people"]["ops"]).post("/api/v1/facilities", body, format="json")
    assert r.status_code == 201 and r.json()["accounts"] == {"se_ai": "SE"}
    bad = {**body, "code": "x2", "accounts": {"a": "ZZ"}}
    r = api_as(lumi["people"]["ops"]).post("/api/v1/facilities", bad, format="json")
    assert r.status_code == 400 and "'ZZ' is not a member" in r.json()["detail"]
    change = api_as(lumi["people"]["sig_fi"]).post(
        "/api/v1/facilities/lumi/changes", {"changes": {"accounts": {"p": "NL"}}}, format="json"
    )
    assert change.status_code == 200 and change.json()["accounts"] == {"p": "NL"}


def test_an_export_larger_than_the_limit_is_refused_whole(lumi, settings):
    settings.SACCT_IMPORT_MAX_BYTES = len(JOBS) - 3
    before = Entry.objects.count()
    r = api_as(lumi["people"]["rec_fi"]).post(
        "/api/v1/facilities/lumi/imports", JOBS, content_type="text/plain"
    )
    assert r.status_code == 413 and f"larger than {len(JOBS) - 3} bytes" in r.json()["detail"]
    assert Entry.objects.count() == before
