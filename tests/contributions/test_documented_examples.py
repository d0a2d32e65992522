"""The request bodies docs/contributions.md shows are the ones the API takes: each is
read from the markdown and posted verbatim."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from contributions.models import Contribution
from ledger.services import Entry
from tests.steps.api import api_as
from tests.steps.contributions import treaty_from

DOC = (Path(__file__).parents[2] / "docs" / "contributions.md").read_text()


def documented_body(endpoint: str) -> str:
    """The first JSON block after the line that introduces ``endpoint``."""
    at = DOC.index(f"`POST {endpoint}`")
    start = DOC.index("```json\n", at) + len("```json\n")
    return DOC[start : DOC.index("\n```", start)]


def test_the_documented_dataset_body_is_recorded_as_it_stands(lumi):
    body = documented_body("/api/v1/contributions/data")
    r = api_as(lumi["people"]["rec_fi"]).post(
        "/api/v1/contributions/data", body, content_type="application/json"
    )
    assert r.status_code == 201, r.content
    recorded = Entry.objects.get(kind="data.contributed").payload["dataset"]
    assert recorded == json.loads(body)["dataset"]
    assert Contribution.objects.get(id=r.json()["id"]).member_id == "FI"


def test_the_dataset_without_its_wrapper_is_refused(lumi):
    unwrapped = json.dumps(json.loads(documented_body("/api/v1/contributions/data"))["dataset"])
    r = api_as(lumi["people"]["rec_fi"]).post(
        "/api/v1/contributions/data", unwrapped, content_type="application/json"
    )
    assert r.status_code == 400 and r["Content-Type"] == "application/problem+json"


def test_the_documented_funds_body_is_recorded_as_it_stands(lumi):
    treaty_from(lumi, date(2026, 1, 1))
    body = documented_body("/api/v1/contributions/funds")
    r = api_as(lumi["people"]["rec_se"]).post(
        "/api/v1/contributions/funds", body, content_type="application/json"
    )
    assert r.status_code == 201, r.content
    payload = Entry.objects.get(kind="funds.contributed").payload
    assert {k: payload[k] for k in ("amount", "currency", "date", "reference")} == json.loads(body)
