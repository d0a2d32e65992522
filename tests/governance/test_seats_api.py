"""Seat changes through the REST API: who may assign and vacate which seats, who sees
which, and bad input answered with a problem and nothing on the ledger.

Personas (``people``: the delegates of tests/personas.py, by the names of
tests/governance/conftest.py): the secretariat, a signatory and a recorder of France, an
observer and a signatory of Germany, an auditor, and a newcomer with no seat; the world's
other delegates (Germany's recorder, Italy's signatory) are among the seats listed.
"""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from consortium.governance.models import Seat, SeatHolder
from consortium.governance.selectors import seat_of
from ledger.services import Entry
from tests.steps.api import api_as
from tests.steps.signin import sign_in

PROBLEM = "application/problem+json"


def _seat(user) -> Seat:
    return SeatHolder.objects.get(user=user).seat


def _assign(client, **body):
    return client.post("/api/v1/seats", body, format="json")


def _vacate(client, seat, reason="moved on"):
    return client.post(f"/api/v1/seats/{seat.id}/vacate", {"reason": reason}, format="json")


def _refused(r, status: int, entries_before: int, text: str = "") -> None:
    assert r.status_code == status, r.content
    assert r["Content-Type"].startswith(PROBLEM)
    assert text in r.json()["detail"]
    assert Entry.objects.count() == entries_before


def test_the_secretariat_assigns_and_vacates_a_seat(people):
    api = api_as(people["secretariat"])
    before = Entry.objects.count()
    r = _assign(api, username="newcomer", role="observer", member="IT")
    assert r.status_code == 201, r.content
    body = r.json()
    assert (body["member"], body["role"], body["holder"]) == ("IT", "observer", "newcomer")
    assert body["vacated_in"] is None
    assert Entry.objects.count() == before + 1
    assert Entry.objects.get(index=body["assigned_in"]).kind == "seat.assigned"
    assert seat_of(people["newcomer"]).member_id == "IT"
    assert body["seat"] in [s["seat"] for s in api.get("/api/v1/seats").json()["results"]]

    seat = Seat.objects.get(id=body["seat"])
    r = _vacate(api, seat, reason="left the delegation")
    assert r.status_code == 200, r.content
    assert r.json()["vacated_in"] == before + 1 and r.json()["holder"] is None
    assert Entry.objects.get(index=before + 1).kind == "seat.vacated"
    assert seat_of(people["newcomer"]) is None
    assert body["seat"] not in [s["seat"] for s in api.get("/api/v1/seats").json()["results"]]
    # Vacating it again is a conflict, and writes nothing.
    _refused(_vacate(api, seat), 409, Entry.objects.count(), "already vacant")


def test_the_secretariat_assigns_a_consortium_wide_seat(people):
    r = _assign(api_as(people["secretariat"]), username="newcomer", role="auditor")
    assert r.status_code == 201, r.content
    assert (r.json()["member"], r.json()["role"]) == (None, "auditor")


def test_a_signatory_assigns_and_vacates_its_own_members_seats_only(people):
    api = api_as(people["sig_fr"])
    r = _assign(api, username="newcomer", role="recorder", member="FR")
    assert r.status_code == 201, r.content
    assert (r.json()["member"], r.json()["holder"]) == ("FR", "newcomer")
    assert _vacate(api, Seat.objects.get(id=r.json()["seat"])).status_code == 200

    before = Entry.objects.count()
    _refused(
        _assign(api, username="newcomer", role="recorder", member="DE"),
        403,
        before,
        "a signatory of FR cannot act for DE",
    )
    _refused(
        _assign(api, username="newcomer", role="auditor"),
        403,
        before,
        "cannot act for the consortium",
    )
    assert seat_of(people["newcomer"]) is None


@pytest.mark.parametrize("who", ["rec_fr", "obs_de", "auditor", "newcomer"])
def test_only_the_secretariat_and_signatories_assign_seats(people, who):
    api = api_as(people[who])
    member = {"rec_fr": "FR", "obs_de": "DE"}.get(who, "IT")
    before = Entry.objects.count()
    _refused(_assign(api, username="newcomer", role="observer", member=member), 403, before)
    # Not even whether a user exists is told to them.
    _refused(_assign(api, username="ghost", role="observer", member=member), 403, before)


@pytest.mark.parametrize(
    ("who", "target"), [("rec_fr", "sig_fr"), ("obs_de", "sig_de"), ("auditor", "sig_de")]
)
def test_delegates_who_may_not_assign_may_not_vacate_either(people, who, target):
    seat = _seat(people[target])
    _refused(_vacate(api_as(people[who]), seat), 403, Entry.objects.count())
    assert Seat.objects.get(id=seat.id).active


def test_a_delegate_sees_only_its_own_members_seats(people):
    api = api_as(people["sig_fr"])
    listed = api.get("/api/v1/seats").json()["results"]
    assert {(s["member"], s["role"], s["holder"]) for s in listed} == {
        ("FR", "signatory", "fr"),
        ("FR", "recorder", "rec_fr"),
    }
    assert api.get("/api/v1/seats?member=DE").json()["results"] == []
    assert len(api.get("/api/v1/seats?member=FR").json()["results"]) == 2
    # Another member's seat, or a consortium-wide one, is not found: not even its existence
    # is told.
    before = Entry.objects.count()
    for other in ("sig_de", "secretariat"):
        _refused(_vacate(api, _seat(people[other])), 404, before, "no seat")
        assert _seat(people[other]).active
    assert api_as(people["obs_de"]).get("/api/v1/seats?member=FR").json()["results"] == []


@pytest.mark.parametrize("who", ["secretariat", "auditor"])
def test_the_secretariat_and_auditors_see_every_active_seat(people, who):
    api = api_as(people[who])
    listed = api.get("/api/v1/seats").json()["results"]
    holders = {s["holder"]: (s["member"], s["role"]) for s in listed}
    assert holders == {
        "ops": (None, "secretariat"),
        "aud": (None, "auditor"),
        "fr": ("FR", "signatory"),
        "de": ("DE", "signatory"),
        "it": ("IT", "signatory"),
        "rec_fr": ("FR", "recorder"),
        "rec_de": ("DE", "recorder"),
        "obs_de": ("DE", "observer"),
    }
    germany = api.get("/api/v1/seats?member=DE").json()["results"]
    assert {s["holder"] for s in germany} == {"de", "rec_de", "obs_de"}


def test_a_user_without_a_seat_sees_no_seats(people):
    assert api_as(people["newcomer"]).get("/api/v1/seats").status_code == 403


@pytest.mark.parametrize(
    ("body", "status", "text"),
    [
        ({"username": "newcomer", "role": "chair", "member": "FR"}, 400, "role"),
        ({"username": "ghost", "role": "observer", "member": "FR"}, 400, "no user 'ghost'"),
        ({"username": "newcomer", "role": "observer", "member": "ZZ"}, 400, "no member 'ZZ'"),
        ({"username": "newcomer", "role": "observer"}, 400, "give its member"),
        ({"username": "newcomer", "role": "auditor", "member": "FR"}, 400, "consortium-wide"),
        ({"role": "observer", "member": "FR"}, 400, "username"),
        ({"username": "de", "role": "observer", "member": "FR"}, 409, "already holds a seat"),
    ],
)
def test_bad_seat_assignments_get_a_problem_and_write_nothing(people, body, status, text):
    api = api_as(people["secretariat"])
    before, seats = Entry.objects.count(), Seat.objects.count()
    _refused(api.post("/api/v1/seats", body, format="json"), status, before, text)
    assert Seat.objects.count() == seats


def test_an_unknown_seat_is_not_found(people):
    r = api_as(people["secretariat"]).post(
        "/api/v1/seats/00000000-0000-4000-8000-000000000000/vacate", {}, format="json"
    )
    assert r.status_code == 404 and r["Content-Type"].startswith(PROBLEM)


def test_the_seat_endpoints_need_authentication(people):
    anonymous = APIClient()
    assert anonymous.get("/api/v1/seats").status_code == 401
    r = _assign(anonymous, username="newcomer", role="observer", member="FR")
    assert r.status_code == 401 and r["Content-Type"].startswith(PROBLEM)


def test_who_am_i_names_the_token_it_was_asked_with(people, client):
    api = api_as(people["sig_fr"])
    me = api.get("/api/v1/delegates/self").json()
    token = people["sig_fr"].api_tokens.get()
    assert (me["member"], me["role"]) == ("FR", "signatory")
    assert me["token"]["key_id"] == token.key_id
    assert me["token"]["expires_at"].startswith(token.expires_at.strftime("%Y-%m-%dT%H:%M:%S"))
    sign_in(client, people["sig_fr"])
    assert client.get("/api/v1/delegates/self").json()["token"] is None


def test_vacating_a_seat_through_the_api_ends_the_tokens_issued_for_it(people):
    sig_de = api_as(people["sig_de"])
    assert sig_de.get("/api/v1/delegates/self").status_code == 200
    r = _vacate(api_as(people["secretariat"]), _seat(people["sig_de"]))
    assert r.status_code == 200, r.content
    r = sig_de.get("/api/v1/delegates/self")
    assert r.status_code == 401 and "no longer holds" in r.json()["detail"]
