"""A member's keys through its signatory: rotation (to a key the member holds itself, or
a fresh hosted one) and revocation, with who may and what is refused."""

from __future__ import annotations

import base64

import pytest

from consortium.governance.changes import GovernanceError, acting_signer
from consortium.governance.member_keys import member_key_rotate
from ledger import services
from ledger.keys import EntrySigner
from ledger.services import Entry, Key, log_signer
from ledger.verify import verify_ledger
from tests.steps.api import api_as


def _valid(owner):
    return list(Key.objects.filter(kind="member", owner=owner, revoked_at__isnull=True))


def test_a_signatory_rotates_its_members_key_to_one_it_holds(delegates):
    (old,) = _valid("FR")
    own = EntrySigner.generate("fr-hsm")
    r = api_as(delegates["fr"]).post(
        "/api/v1/members/FR/keys/rotation",
        {"public_key": base64.b64encode(own.public_key).decode(), "name": "fr-hsm"},
        format="json",
    )
    assert r.status_code == 201, r.content
    assert r.json()["fingerprint"] == own.fingerprint and r.json()["custody"] == "external"
    assert [k.fingerprint for k in _valid("FR")] == [own.fingerprint]
    old.refresh_from_db()
    assert old.revoked_at is not None
    # The server holds no key of France now: it signs for France no longer.
    with pytest.raises(GovernanceError, match="no hosted key"):
        acting_signer(delegates["fr"])


def test_a_rotation_to_a_fresh_hosted_key(delegates):
    (old,) = _valid("DE")
    key = member_key_rotate(actor=delegates["de"], code="DE")
    assert key.custody == "hosted" and key.fingerprint != old.fingerprint
    assert acting_signer(delegates["de"])[0].fingerprint == key.fingerprint


@pytest.mark.parametrize(
    ("who", "status"), [("de", 403), ("rec_fr", 403), ("aud", 403), ("ops", 403)]
)
def test_only_the_members_own_signatory_rotates_its_key(delegates, who, status):
    before = Entry.objects.count()
    r = api_as(delegates[who]).post("/api/v1/members/FR/keys/rotation", {}, format="json")
    assert r.status_code == status and r["Content-Type"] == "application/problem+json"
    assert Entry.objects.count() == before


def test_bad_public_keys_are_refused(delegates):
    c = api_as(delegates["fr"])
    r = c.post("/api/v1/members/FR/keys/rotation", {"public_key": "not base64!"}, format="json")
    assert r.status_code == 400 and "base64" in r.json()["detail"]
    r = c.post("/api/v1/members/FR/keys/rotation", {"public_key": "AAAA"}, format="json")
    assert r.status_code == 400 and "public key is 32 bytes" in r.json()["detail"]


def test_a_signatory_revokes_a_compromised_key_but_never_the_last(delegates):
    extra = EntrySigner.generate("it-laptop")
    services.key_register(
        signer=log_signer(),
        kind="member",
        owner="IT",
        name="it-laptop",
        public_key=extra.public_key,
    )
    c = api_as(delegates["it"])
    url = f"/api/v1/members/IT/keys/{extra.fingerprint}/revocation"
    assert api_as(delegates["fr"]).post(url, {"reason": "x"}, format="json").status_code == 403
    r = c.post(url, {"reason": "laptop stolen"}, format="json")
    assert r.status_code == 200 and r.json()["fingerprint"] == extra.fingerprint
    (last,) = _valid("IT")
    r = c.post(
        f"/api/v1/members/IT/keys/{last.fingerprint}/revocation", {"reason": "x"}, format="json"
    )
    assert r.status_code == 409 and "last valid key" in r.json()["detail"]
    r = c.post(url, {"reason": "again"}, format="json")
    assert r.status_code == 404
    assert verify_ledger(workers=1).ok
