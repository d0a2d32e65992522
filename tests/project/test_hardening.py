"""What a second review found: inputs that reached the database or the clock where
they should not have. Each is now a clear 4xx with nothing written, or deterministic."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from consortium.governance import proposals
from consortium.governance.changes import GovernanceError
from consortium.governance.models import Member, Proposal, SeatHolder
from consortium.governance.votes import vote_cast
from ledger.core.envelope import new_envelope, sign_envelope
from ledger.keys import log_origin
from ledger.services import Entry
from tests.personas import found_delegates
from tests.steps.api import api_as
from tests.steps.governance import decide_after_deadline

SOON = timedelta(hours=1)


def _open(delegates, actions, who="ops"):
    return proposals.proposal_open(
        actor=delegates[who], title="t", actions=actions, deadline=datetime.now(UTC) + SOON
    )


def _carry(delegates, p):
    for who in ("fr", "de"):
        vote_cast(actor=delegates[who], proposal=p, choice="yes")
    return decide_after_deadline(p)


@pytest.mark.slow
def test_replay_long_after_a_grant_expired_rebuilds_the_same_tables(committed_db):
    from ledger.replay import replay_check

    people = found_delegates()
    until = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
    p = _open(
        people,
        [
            {
                "type": "access.grant",
                "member": "IT",
                "scope": "evaluation",
                "until": until,
                "reason": "evaluation",
            }
        ],
    )
    assert _carry(people, p).state == "accepted"
    with time_machine.travel(datetime.now(UTC) + timedelta(days=10)):
        report = replay_check()
    assert report.ok, report.differences


def test_a_valuation_version_past_what_the_table_holds_is_refused(delegates):
    table = {"version": 2**40, "unit": "h", "weights": {"h100": "1"}}
    with pytest.raises(GovernanceError, match="under 2"):
        _open(delegates, [{"type": "valuation.adopt", "table": table}])


def test_voting_rule_names_are_short_slugs(delegates):
    rules = {"voting": {"r" * 80: {"kind": "unanimity"}}, "default": "r" * 80}
    with pytest.raises(GovernanceError, match="1-64 lowercase letters"):
        _open(delegates, [{"type": "rules.change", "rules": rules}])


def test_terms_that_cannot_be_canonicalised_are_a_400(delegates):
    api = api_as(delegates["fr"])
    doc = api.post("/api/v1/documents?name=t.txt", b"text", content_type="text/plain").json()
    terms = {
        "parties": ["FR", "DE"],
        "effective": {"from": "2026-01-01", "until": None},
        "valuation": {"version": 2**60, "unit": "h", "weights": {"h100": "1"}},
        "access": [{"scope": "evaluation", "tier": "member"}],
    }
    before = Entry.objects.count()
    r = api.post(
        "/api/v1/agreements",
        {"kind": "model_licence", "title": "L", "terms": terms, "document_sha256": doc["sha256"]},
        format="json",
    )
    assert r.status_code == 400 and "terms.valuation.version" in r.json()["detail"]
    assert Entry.objects.count() == before


@pytest.mark.parametrize(
    ("url", "body"),
    [
        (
            "/api/v1/proposals",
            {
                "title": "t\x00",
                "deadline": "2099-01-01T00:00:00Z",
                "actions": [{"type": "member.suspend", "code": "IT"}],
            },
        ),
        ("/api/v1/seats", {"username": "x\x00", "role": "recorder", "member": "FR"}),
        ("/api/v1/ledger/entries", {"envelope": {"kind": "key.revoked\x00"}, "signature": "x"}),
    ],
)
def test_u0000_in_a_body_is_a_400(delegates, url, body):
    before = Entry.objects.count()
    r = api_as(delegates["fr"]).post(url, body, format="json")
    assert r.status_code == 400 and "U+0000" in r.json()["detail"]
    assert Entry.objects.count() == before


@pytest.mark.parametrize(
    "url", ["/api/v1/members/%00", "/api/v1/seats?member=%00", "/api/v1/documents/%00"]
)
def test_u0000_in_a_path_or_query_is_a_400(delegates, url):
    r = api_as(delegates["fr"]).get(url)
    assert r.status_code == 400 and r["Content-Type"] == "application/problem+json"


def test_a_body_nested_too_deeply_is_a_400(delegates):
    body = '{"title": "t", "actions": ' + "[" * 100_000 + "]" * 100_000 + "}"
    r = api_as(delegates["fr"]).post("/api/v1/proposals", body, content_type="application/json")
    assert r.status_code == 400 and "nested too deeply" in r.json()["detail"]


def test_a_vote_integrated_after_the_deadline_is_not_written(delegates, monkeypatch):
    p = _open(delegates, [{"type": "member.suspend", "code": "IT"}])
    import ledger.log

    class Late(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime.now(tz) + SOON + timedelta(minutes=1)

    monkeypatch.setattr(ledger.log, "datetime", Late)  # the log integrates it too late
    before = Entry.objects.count()
    with pytest.raises(GovernanceError, match="deadline has passed") as exc:
        vote_cast(actor=delegates["fr"], proposal=p, choice="yes")
    assert exc.value.status == 409 and Entry.objects.count() == before


def test_a_submitted_seat_names_its_uuid_in_canonical_form(delegates):
    from ledger import services
    from ledger.keys import EntrySigner
    from ledger.services import log_signer

    key = EntrySigner.generate("fr-ext")
    services.key_register(
        signer=log_signer(), kind="member", owner="FR", name="fr-ext", public_key=key.public_key
    )
    seat = f"urn:uuid:{str(uuid.uuid4()).upper()}"
    env = new_envelope(
        kind="seat.assigned",
        author=key.fingerprint,
        payload={"seat": seat, "member": "FR", "role": "observer"},
    )
    sig = base64.b64encode(sign_envelope(env, key.signing_key, log_origin()).signature).decode()
    r = api_as(delegates["fr"]).post(
        "/api/v1/ledger/entries", {"envelope": env, "signature": sig}, format="json"
    )
    assert r.status_code == 400 and "canonical form" in r.json()["detail"]


def test_a_suspended_members_signatory_uploads_nothing(delegates):
    p = _open(delegates, [{"type": "member.suspend", "code": "IT"}])
    _carry(delegates, p)
    r = api_as(delegates["it"]).post(
        "/api/v1/documents?name=x.txt", b"x", content_type="text/plain"
    )
    assert r.status_code == 403 and "not a member in good standing" in r.json()["detail"]


def test_a_member_that_withdraws_loses_its_seats_and_its_tokens(delegates):
    api = api_as(delegates["it"])
    assert api.get("/api/v1/members").status_code == 200
    p = _open(delegates, [{"type": "member.withdraw", "code": "IT"}])
    _carry(delegates, p)
    assert Member.objects.get(code="IT").status == "withdrawn"
    assert not SeatHolder.objects.get(user=delegates["it"]).seat.active
    assert api.get("/api/v1/members").status_code == 401


def test_a_proposal_is_withdrawn_through_the_api(delegates):
    p = _open(delegates, [{"type": "member.suspend", "code": "IT"}], who="fr")
    url = f"/api/v1/proposals/{p.id}/withdrawal"
    assert api_as(delegates["de"]).post(url).status_code == 403
    r = api_as(delegates["fr"]).post(url, HTTP_IDEMPOTENCY_KEY="w-1")
    assert r.status_code == 200 and r.json()["state"] == "withdrawn"
    again = api_as(delegates["fr"]).post(url, HTTP_IDEMPOTENCY_KEY="w-1")
    assert again.status_code == 200 and Entry.objects.filter(kind="proposal.withdrawn").count() == 1
    assert api_as(delegates["ops"]).post(url).status_code == 409
    assert Proposal.objects.get(id=p.id).state == "withdrawn"
