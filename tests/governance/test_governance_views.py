"""What each persona sees of governance in the admin and the API."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from consortium.governance.models import SeatHolder
from consortium.governance.seats import seat_vacate
from consortium.governance.selectors import seat_of
from tests.steps.api import api_as
from tests.steps.signin import sign_in

User = get_user_model()


@pytest.fixture
def viewers(delegates):
    """The delegates (tests/personas.py) by this module's names."""
    names = {"sig_fr": "fr", "sig_de": "de", "auditor": "aud"}
    return {
        n: delegates[names.get(n, n)] for n in ("ops", "sig_fr", "sig_de", "auditor", "newcomer")
    }


def _seat_rows(client) -> str:
    r = client.get("/admin/consortium/seat/")
    assert r.status_code == 200
    return r.content.decode()


def test_a_signatory_of_france_sees_only_frances_seats(client, viewers):
    sign_in(client, viewers["sig_fr"])
    body = _seat_rows(client)
    fr = str(SeatHolder.objects.get(user=viewers["sig_fr"]).seat.id)
    de = str(SeatHolder.objects.get(user=viewers["sig_de"]).seat.id)
    assert fr in body and de not in body
    assert str(SeatHolder.objects.get(user=viewers["auditor"]).seat.id) not in body
    assert client.get(f"/admin/consortium/seat/{de}/change/").status_code in (302, 404)


@pytest.mark.parametrize("who", ["ops", "auditor"])
def test_the_secretariat_and_auditors_see_every_seat(client, viewers, who):
    sign_in(client, viewers[who])
    body = _seat_rows(client)
    for name in ("sig_fr", "sig_de", "auditor"):
        assert str(SeatHolder.objects.get(user=viewers[name]).seat.id) in body


def test_every_seat_holder_reads_the_members_and_the_shared_ledger(client, viewers):
    sign_in(client, viewers["sig_de"])
    assert client.get("/admin/consortium/member/").status_code == 200
    assert client.get("/admin/ledger/entry/").status_code == 200
    assert client.get("/admin/consortium/member/FR/change/").status_code == 200


def test_no_one_edits_governance_tables_in_the_admin(client, viewers):
    sign_in(client, viewers["ops"])
    assert client.get("/admin/consortium/member/add/").status_code == 403
    assert client.post("/admin/consortium/member/FR/delete/", {"post": "yes"}).status_code == 403


def test_a_user_without_a_seat_gets_no_admin(client, viewers):
    sign_in(client, viewers["newcomer"])
    assert client.get("/admin/consortium/member/").status_code == 302


def test_vacating_a_seat_closes_the_admin(client, viewers):
    seat = SeatHolder.objects.get(user=viewers["sig_fr"]).seat
    seat_vacate(actor=viewers["ops"], seat=seat)
    sign_in(client, User.objects.get(username="fr"))
    assert client.get("/admin/consortium/member/").status_code == 302


def test_the_api_lists_members_and_answers_who_am_i(viewers):
    api = api_as(viewers["sig_fr"])
    assert [m["code"] for m in api.get("/api/v1/members").json()["results"]] == ["DE", "FR", "IT"]
    assert api.get("/api/v1/members/DE").json()["status"] == "member"
    me = api.get("/api/v1/delegates/self").json()
    assert (me["member"], me["role"]) == ("FR", "signatory")


def test_the_api_says_clearly_when_there_is_no_such_member_or_seat(viewers):
    api = api_as(viewers["newcomer"])
    r = api.get("/api/v1/delegates/self")
    assert r.status_code == 403 and r["Content-Type"].startswith("application/problem+json")
    assert r.json()["detail"] == "you hold no seat in the consortium"
    assert api_as(viewers["sig_fr"]).get("/api/v1/members/ZZ").status_code == 404
    assert APIClient().get("/api/v1/members").status_code == 401


def test_the_secretariat_assigns_a_seat_in_the_admin(client, viewers):
    sign_in(client, viewers["ops"])
    assert client.get("/admin/consortium/seat/assign/").status_code == 200
    r = client.post(
        "/admin/consortium/seat/assign/",
        {"username": "newcomer", "member": "DE", "role": "observer"},
    )
    assert r.status_code == 302
    assert seat_of(User.objects.get(username="newcomer")).member_id == "DE"


def test_a_signatory_assigns_only_its_own_members_seats_in_the_admin(client, viewers):
    sign_in(client, viewers["sig_fr"])
    page = client.get("/admin/consortium/seat/assign/").content.decode()
    assert 'value="FR"' in page and 'value="DE"' not in page
    r = client.post(
        "/admin/consortium/seat/assign/",
        {"username": "newcomer", "member": "DE", "role": "observer"},
    )
    assert r.status_code == 200 and "Select a valid choice" in r.content.decode()
    assert seat_of(User.objects.get(username="newcomer")) is None


def test_a_signatory_cannot_give_a_consortium_wide_seat_in_the_admin(client, viewers):
    sign_in(client, viewers["sig_fr"])
    r = client.post(
        "/admin/consortium/seat/assign/", {"username": "newcomer", "member": "", "role": "auditor"}
    )
    assert r.status_code == 200 and "cannot act for the consortium" in r.content.decode()


def test_an_auditor_gets_no_assign_form(client, viewers):
    sign_in(client, viewers["auditor"])
    assert client.get("/admin/consortium/seat/assign/").status_code == 403


def test_the_secretariat_vacates_seats_with_an_admin_action(client, viewers):
    sign_in(client, viewers["ops"])
    seat = SeatHolder.objects.get(user=viewers["sig_de"]).seat
    r = client.post(
        "/admin/consortium/seat/", {"action": "vacate", "_selected_action": [str(seat.id)]}
    )
    assert r.status_code == 302
    seat.refresh_from_db()
    assert seat.vacated_in is not None
