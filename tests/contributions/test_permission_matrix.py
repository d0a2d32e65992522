"""Every contribution write path of the API against every persona: refused requests
are problems (403) that write nothing."""

from __future__ import annotations

import pytest

from contributions.compute import sacct_import
from contributions.disputes import contribution_dispute
from contributions.funds import funds_contribute
from ledger.services import Entry
from tests import worlds
from tests.steps.api import api_as
from tests.steps.contributions import DATASET, JOBS, paid_under_a_treaty

# Every test here starts from the same world: built once for the module (tests/worlds.py).
lumi = worlds.shared("lumi")

PERSONAS = ("ops", "aud", "rec_fi", "sig_fi", "rec_se", "sig_se", "obs_nl")


def _import(lumi):
    _, _, imported = sacct_import(actor=lumi["people"]["ops"], facility=lumi["facility"], data=JOBS)
    return imported


def _funds(lumi):
    # Paid under a treaty in force that shares the cost: disputes are between its parties.
    paid_under_a_treaty(lumi)
    return funds_contribute(
        actor=lumi["people"]["rec_se"], amount="1", currency="EUR", date_paid="2026-01-01"
    )


def _dispute(lumi):
    return contribution_dispute(
        actor=lumi["people"]["sig_fi"], contribution=_funds(lumi), reason="?"
    )


WRITES = {
    "register facility": (
        lambda lumi: (
            "/api/v1/facilities",
            {
                "code": "snellius",
                "name": "Snellius",
                "operator": "NL",
                "country": "NL",
                "default_accelerator": "a100",
            },
        ),
        {"ops"},
    ),
    "change facility": (
        lambda lumi: ("/api/v1/facilities/lumi/changes", {"changes": {"timezone": "UTC"}}),
        {"ops", "sig_fi"},
    ),
    "import": (lambda lumi: ("/api/v1/facilities/lumi/imports", JOBS), {"ops", "rec_fi", "sig_fi"}),
    "attest": (
        lambda lumi: (f"/api/v1/imports/{_import(lumi).id}/attestation", None),
        {"rec_fi", "sig_fi"},
    ),
    "funds": (
        lambda lumi: (
            paid_under_a_treaty(lumi)
            or (
                "/api/v1/contributions/funds",
                {"amount": "5", "currency": "EUR", "date": "2026-01-01"},
            )
        ),
        {"rec_fi", "sig_fi", "rec_se", "sig_se"},
    ),
    "data": (
        lambda lumi: ("/api/v1/contributions/data", {"dataset": DATASET}),
        {"rec_fi", "sig_fi", "rec_se", "sig_se"},
    ),
    "dispute": (
        lambda lumi: (f"/api/v1/contributions/{_funds(lumi).id}/disputes", {"reason": "?"}),
        {"sig_fi", "sig_se"},
    ),
    "confirm": (
        lambda lumi: (
            f"/api/v1/contributions/{_funds(lumi).id}/confirmation",
            {"outcome": "confirmed"},
        ),
        {"ops"},
    ),
    "resolve": (
        lambda lumi: (
            f"/api/v1/disputes/{_dispute(lumi).id}/resolution",
            {"outcome": "dismissed", "resolution": "ok"},
        ),
        {"ops"},
    ),
}


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("write", list(WRITES))
def test_contribution_permission_matrix(lumi, write, persona):
    build, allowed = WRITES[write]
    url, body = build(lumi)
    client = api_as(lumi["people"][persona])
    before = Entry.objects.count()
    if isinstance(body, bytes):
        r = client.post(url, body, content_type="text/plain")
    else:
        r = client.post(url, body, format="json")
    if persona in allowed:
        assert r.status_code in (200, 201), (write, persona, r.content)
        assert Entry.objects.count() > before
    else:
        assert r.status_code == 403, (write, persona, r.content)
        assert r["Content-Type"] == "application/problem+json"
        assert Entry.objects.count() == before
