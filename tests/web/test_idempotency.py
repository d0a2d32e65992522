"""Retries with an Idempotency-Key: the same request answers as the first did and writes
nothing new; the same key for another request is a 409."""

from __future__ import annotations

import pytest

from consortium.governance.models import SeatHolder
from ledger.services import Entry
from tests import worlds
from tests.steps.api import api_as
from tests.steps.governance import propose, treaty_terms

# Every test here starts from the same world: built once for the module (tests/worlds.py).
delegates = worlds.shared("delegates")


def _twice(client, url, body, other):
    first = client.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code in (200, 201), first.content
    after_first = Entry.objects.count()
    again = client.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert again.status_code in (200, 201) and again.json() == first.json()
    assert Entry.objects.count() == after_first
    clash = client.post(url, other, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert clash.status_code == 409 and "Idempotency-Key" in clash.json()["detail"]
    assert Entry.objects.count() == after_first


def test_seat_assignment(delegates):
    # The world's newcomer, who holds no seat yet.
    _twice(
        api_as(delegates["fr"]),
        "/api/v1/seats",
        {"username": "newcomer", "role": "recorder", "member": "FR"},
        {"username": "newcomer", "role": "observer", "member": "FR"},
    )


def test_seat_vacation(delegates):
    seat = SeatHolder.objects.get(user=delegates["rec_fr"]).seat_id
    _twice(
        api_as(delegates["fr"]),
        f"/api/v1/seats/{seat}/vacate",
        {"reason": "moved"},
        {"reason": "another reason"},
    )


def test_application(delegates):
    _twice(
        api_as(delegates["ops"]),
        "/api/v1/members",
        {"code": "ES", "figures": {"population": 48, "gni": "1"}},
        {"code": "PT", "figures": {"population": 10, "gni": "1"}},
    )


def test_withdrawal_and_termination(delegates):
    a = propose(delegates, terms=treaty_terms(parties=("FR", "DE")))
    _twice(
        api_as(delegates["fr"]),
        f"/api/v1/agreements/{a.id}/withdrawal",
        {"reason": "no"},
        {"reason": "other"},
    )
    b = propose(delegates, terms=treaty_terms(parties=("FR", "DE")))
    _twice(
        api_as(delegates["ops"]),
        f"/api/v1/agreements/{b.id}/termination",
        {"reason": "x"},
        {"reason": "y"},
    )


@pytest.mark.parametrize("key", ["", "x" * 65, "white space", "ünïcode"])
def test_malformed_keys_are_refused(delegates, key):
    a = propose(delegates)
    r = api_as(delegates["fr"]).post(
        f"/api/v1/agreements/{a.id}/withdrawal",
        {"reason": "r"},
        format="json",
        HTTP_IDEMPOTENCY_KEY=key,
    )
    if key == "":
        assert r.status_code == 201  # an empty header is no key at all
    else:
        assert r.status_code == 400 and "Idempotency-Key is 1-64" in r.json()["detail"]


def test_key_rotation_and_revocation(delegates):
    import base64

    from ledger.keys import EntrySigner

    own = base64.b64encode(EntrySigner.generate("de-hsm").public_key).decode()
    other = base64.b64encode(EntrySigner.generate("de-other").public_key).decode()
    c = api_as(delegates["de"])
    _twice(c, "/api/v1/members/DE/keys/rotation", {"public_key": own}, {"public_key": other})
    first = c.post("/api/v1/members/FR/keys/rotation", {}, format="json")
    assert first.status_code == 403  # not DE's signatory for France, key or no key


def test_a_hosted_rotation_retried_returns_the_same_new_key(delegates):
    c = api_as(delegates["it"])
    first = c.post("/api/v1/members/IT/keys/rotation", {}, format="json", HTTP_IDEMPOTENCY_KEY="r")
    again = c.post("/api/v1/members/IT/keys/rotation", {}, format="json", HTTP_IDEMPOTENCY_KEY="r")
    assert first.status_code == again.status_code == 201
    assert first.json()["fingerprint"] == again.json()["fingerprint"]
    assert Entry.objects.filter(kind="key.rotated").count() == 1
