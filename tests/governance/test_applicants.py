"""Applicant -> member: the secretariat records an application; a proposal admits it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from consortium.governance import proposals
from consortium.governance.changes import GovernanceError
from consortium.governance.members import member_record
from consortium.governance.models import Member
from consortium.governance.votes import vote_cast
from ledger.services import Entry, Key
from tests import worlds
from tests.steps.api import api_as
from tests.steps.governance import decide_after_deadline

# Every test here starts from the same world: built once for the module (tests/worlds.py).
delegates = worlds.shared("delegates")

SPAIN = {"code": "ES", "figures": {"population": 48, "gni": "1500"}}


def test_an_applicant_is_admitted_by_an_accepted_proposal(delegates):
    r = api_as(delegates["ops"]).post("/api/v1/members", SPAIN, format="json")
    assert r.status_code == 201, r.content
    assert r.json()["status"] == "applicant" and r.json()["name"] == "Spain"
    record = member_record(code="ES", figures=SPAIN["figures"])
    p = proposals.proposal_open(
        actor=delegates["fr"],
        title="Admit Spain",
        actions=[{"type": "member.admit", "member": record}],
        deadline=datetime.now(UTC) + timedelta(hours=1),
    )
    assert "ES" not in p.eligible  # applicants do not vote
    for who in ("fr", "de"):
        vote_cast(actor=delegates[who], proposal=p, choice="yes")
    decide_after_deadline(p)
    spain = Member.objects.get(code="ES")
    assert spain.status == "member" and spain.registered_in < spain.changed_in
    assert Key.objects.filter(kind="member", owner="ES", revoked_at__isnull=True).exists()


@pytest.mark.parametrize(
    ("who", "body", "status", "detail"),
    [
        ("fr", SPAIN, 403, "the secretariat records applications"),
        ("aud", SPAIN, 403, "the secretariat records applications"),
        ("ops", {"code": "XX"}, 400, "not an ISO 3166-1 alpha-2"),
        ("ops", {"code": "FR"}, 409, "FR is already known"),
        ("ops", {"code": "ES", "figures": {"population": -1}}, 400, "non-negative"),
    ],
)
def test_bad_applications_write_nothing(delegates, who, body, status, detail):
    before = Entry.objects.count()
    r = api_as(delegates[who]).post("/api/v1/members", body, format="json")
    assert r.status_code == status and detail in r.json()["detail"], r.content
    assert Entry.objects.count() == before


def test_a_member_is_not_admitted_twice(delegates):
    record = member_record(code="FR", figures={"population": 1, "gni": "1"})
    with pytest.raises(GovernanceError, match="FR is already member"):
        proposals.proposal_open(
            actor=delegates["ops"],
            title="t",
            actions=[{"type": "member.admit", "member": record}],
            deadline=datetime.now(UTC) + timedelta(hours=1),
        )
