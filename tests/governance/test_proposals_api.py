"""Proposals and votes through the REST API, hosted keys and external keys alike."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model

from consortium.governance.models import ApiToken, Proposal
from ledger.core.envelope import new_envelope, sign_envelope
from ledger.keys import log_origin
from ledger.services import Entry
from tests.steps.api import api_as
from tests.steps.governance import italy_with_an_external_key
from tests.steps.signin import sign_in

User = get_user_model()
ACTIONS = [{"type": "member.figures", "code": "FR", "figures": {"population": 69}}]


def _open(client, key=None, deadline=None, title="Figures"):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    deadline = deadline or (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    return client.post(
        "/api/v1/proposals",
        {"title": title, "actions": ACTIONS, "deadline": deadline},
        format="json",
        **headers,
    )


def test_a_signatory_opens_a_proposal_and_another_votes(clients):
    r = _open(clients["fr"])
    assert r.status_code == 201, r.content
    pid = r.json()["id"]
    v = clients["de"].post(f"/api/v1/proposals/{pid}/votes", {"choice": "yes"}, format="json")
    assert v.status_code == 201 and v.json() == {**v.json(), "member": "DE", "choice": "yes"}
    listing = clients["rec_de"].get("/api/v1/proposals?state=open").json()["results"]
    assert [p["id"] for p in listing] == [pid]


def test_a_retry_with_the_same_idempotency_key_does_nothing_new(clients):
    deadline = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    first = _open(clients["fr"], key="open-1", deadline=deadline).json()
    again = _open(clients["fr"], key="open-1", deadline=deadline).json()
    assert first["id"] == again["id"] and Proposal.objects.count() == 1
    other = _open(clients["fr"], key="open-1", deadline=deadline, title="Something else")
    assert (
        other.status_code == 409
        and "Idempotency-Key was used for another request" in other.json()["detail"]
    )
    url = f"/api/v1/proposals/{first['id']}/votes"
    clients["de"].post(url, {"choice": "yes"}, format="json", HTTP_IDEMPOTENCY_KEY="v1")
    before = Entry.objects.count()
    assert (
        clients["de"]
        .post(url, {"choice": "yes"}, format="json", HTTP_IDEMPOTENCY_KEY="v1")
        .status_code
        == 201
    )
    assert Entry.objects.count() == before
    conflict = clients["de"].post(url, {"choice": "no"}, format="json", HTTP_IDEMPOTENCY_KEY="v1")
    assert conflict.status_code == 409


@pytest.mark.parametrize(
    ("who", "body", "status"),
    [
        ("rec_de", {"choice": "yes"}, 403),
        ("ops", {"choice": "yes"}, 403),
        ("de", {"choice": "maybe"}, 400),
    ],
)
def test_bad_or_unauthorised_votes_get_a_problem_and_write_nothing(clients, who, body, status):
    pid = _open(clients["fr"]).json()["id"]
    before = Entry.objects.count()
    r = clients[who].post(f"/api/v1/proposals/{pid}/votes", body, format="json")
    assert r.status_code == status and r["Content-Type"].startswith("application/problem+json")
    assert Entry.objects.count() == before


def test_a_proposal_with_a_past_deadline_or_a_bad_action_is_refused(clients):
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    r = clients["fr"].post(
        "/api/v1/proposals", {"title": "t", "actions": ACTIONS, "deadline": past}, format="json"
    )
    assert r.status_code == 400 and "deadline" in r.json()["detail"]
    bad = [{"type": "member.annex", "code": "DE"}]
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    r = clients["fr"].post(
        "/api/v1/proposals", {"title": "t", "actions": bad, "deadline": future}, format="json"
    )
    assert r.status_code == 400 and "unknown action type" in r.json()["detail"]
    assert not Proposal.objects.exists()


def test_a_member_with_an_external_key_votes_with_a_signed_envelope(clients, delegates):
    pid = _open(clients["fr"]).json()["id"]
    it_key, it_user = italy_with_an_external_key(delegates)
    env = new_envelope(
        kind="vote.cast", payload={"proposal": pid, "choice": "no"}, author=it_key.fingerprint
    )
    signed = sign_envelope(env, it_key.signing_key, log_origin())
    body = {"envelope": env, "signature": base64.b64encode(signed.signature).decode()}
    r = api_as(it_user).post("/api/v1/ledger/entries", body, format="json")
    assert r.status_code == 201, r.content
    assert Proposal.objects.get(id=pid).votes.get(member_id="IT").choice == "no"
    # Germany's system cannot submit Italy's vote.
    env2 = new_envelope(
        kind="vote.cast", payload={"proposal": pid, "choice": "yes"}, author=it_key.fingerprint
    )
    body2 = {
        "envelope": env2,
        "signature": base64.b64encode(
            sign_envelope(env2, it_key.signing_key, log_origin()).signature
        ).decode(),
    }
    assert clients["de"].post("/api/v1/ledger/entries", body2, format="json").status_code == 403


def test_an_external_vote_must_name_the_proposal_in_canonical_form(clients, delegates):
    pid = _open(clients["fr"]).json()["id"]
    it_key, it_user = italy_with_an_external_key(delegates)
    env = new_envelope(
        kind="vote.cast",
        payload={"proposal": pid.upper(), "choice": "no"},
        author=it_key.fingerprint,
    )
    body = {
        "envelope": env,
        "signature": base64.b64encode(
            sign_envelope(env, it_key.signing_key, log_origin()).signature
        ).decode(),
    }
    r = api_as(it_user).post("/api/v1/ledger/entries", body, format="json")
    assert r.status_code == 400 and "canonical form" in r.json()["detail"]


def test_a_view_only_user_cannot_revoke_tokens_in_the_admin(db, client):
    from django.contrib.auth.models import Permission

    viewer = User.objects.create_user("viewer", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_apitoken"))
    victim = User.objects.create_user("victim")
    token, _ = ApiToken.issue(user=victim, days=1)
    sign_in(client, viewer)
    client.post("/admin/consortium/apitoken/", {"action": "revoke", "_selected_action": [token.pk]})
    token.refresh_from_db()
    assert token.revoked_at is None
