"""A download token names the seat that asked: only that seat's holder, still holding
it, in a role that may download, is served; anyone else holding the URL is refused, and
the refusal is in the access log."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from consortium.access import downloads
from consortium.access.models import DownloadEvent
from consortium.governance.models import ApiToken, Seat
from consortium.governance.seats import seat_assign, seat_vacate
from consortium.governance.selectors import seat_of
from ledger.services import Key
from tests import worlds
from tests.steps.access import WEIGHTS, authorize, streamed
from tests.steps.api import api_as

# Every test here starts from the same world: built once for the module (tests/worlds.py).
lumi = worlds.shared("lumi", world="published")
checkpoint = worlds.shared("checkpoint", world="published")

User = get_user_model()


@pytest.fixture
def url(lumi, checkpoint):
    """A URL of Sweden's signatory's download (Sweden is ahead of its share)."""
    r = authorize(lumi, checkpoint.digest, who="sig_se")
    assert r.status_code == 201, r.content
    return r.json()["files"]["model.safetensors"]


def _observer_of_sweden(lumi):
    user = User.objects.create_user("obs_se")
    seat_assign(actor=lumi["people"]["ops"], user=user, role="observer", member="SE")
    return user


def test_the_token_carries_the_seat_that_asked(lumi, url):
    token = url.split("/")[4]
    claims = downloads.verify_token(token, bytes(Key.objects.get(kind="log").public_key))
    assert claims.seat == str(seat_of(lumi["people"]["sig_se"]).id)


def test_the_signatory_who_asked_gets_the_bytes(lumi, url):
    got = api_as(lumi["people"]["sig_se"]).get(url)
    assert got.status_code == 200 and streamed(got) == WEIGHTS


def test_an_observer_of_the_same_member_with_the_signatorys_token_is_refused_and_logged(lumi, url):
    observer = _observer_of_sweden(lumi)
    r = api_as(observer).get(url)
    assert r.status_code == 403 and r["Content-Type"] == "application/problem+json"
    assert "issued to another seat" in r.json()["detail"]
    event = DownloadEvent.objects.get(username="obs_se")
    assert (event.outcome, event.member) == ("denied", "SE")
    assert "another seat" in event.reason
    assert not DownloadEvent.objects.filter(outcome="served").exists()


def test_another_delegate_of_the_same_member_is_refused(lumi, url):
    # Sweden's recorder may download, but asks for its own token.
    r = api_as(lumi["people"]["rec_se"]).get(url)
    assert r.status_code == 403 and "issued to another seat" in r.json()["detail"]


def test_another_members_delegate_with_the_token_is_refused_and_logged(lumi, url):
    r = api_as(lumi["people"]["sig_fi"]).get(url)
    assert r.status_code == 403 and "another member" in r.json()["detail"]
    assert DownloadEvent.objects.get(username="sig_fi").outcome == "denied"


def test_an_observer_is_refused_even_with_a_token_naming_its_own_seat(lumi, checkpoint):
    observer = _observer_of_sweden(lumi)
    seat = seat_of(observer)
    token = downloads.sign_token(
        {
            "v": 1,
            "tid": "f" * 32,
            "member": "SE",
            "seat": str(seat.id),
            "checkpoint": checkpoint.digest,
            "scope": "full_weights",
            "files": ["model.safetensors"],
            "exp": 4_102_444_800,
        }
    )
    r = api_as(observer).get(f"/api/v1/downloads/{token}/model.safetensors")
    assert r.status_code == 403 and "the observer seat may not download" in r.json()["detail"]


def test_a_resumed_download_by_the_same_seat_works(lumi, url):
    api = api_as(lumi["people"]["sig_se"])
    first = api.get(url, HTTP_RANGE="bytes=0-99")
    rest = api.get(url, HTTP_RANGE="bytes=100-")
    assert (first.status_code, rest.status_code) == (206, 206)
    assert streamed(first) + streamed(rest) == WEIGHTS


def test_a_vacated_seats_token_stops_working(lumi, url):
    people = lumi["people"]
    seat = seat_of(people["sig_se"])
    seat_vacate(actor=people["ops"], seat=seat, reason="left")
    # With a session: no seat any more.
    r = api_as(people["sig_se"]).get(url)
    assert r.status_code == 403
    # Seated again, the user holds another seat: the old token is not its.
    seat_assign(actor=people["ops"], user=people["sig_se"], role="signatory", member="SE")
    assert Seat.objects.filter(member="SE", role="signatory", vacated_in__isnull=True).count() == 1
    r = api_as(people["sig_se"]).get(url)
    assert r.status_code == 403 and "issued to another seat" in r.json()["detail"]
    assert DownloadEvent.objects.filter(username="sig_se", outcome="denied").count() == 2
    assert not DownloadEvent.objects.filter(outcome="served").exists()


def test_the_url_alone_is_not_enough(lumi, url):
    from rest_framework.test import APIClient

    r = APIClient().get(url)
    assert r.status_code in (401, 403)
    assert DownloadEvent.objects.get().outcome == "denied"


def test_curl_with_the_holders_api_token_is_served(lumi, url):
    from rest_framework.test import APIClient

    _, secret = ApiToken.issue(user=lumi["people"]["sig_se"])
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    got = api.get(url)
    assert got.status_code == 200 and streamed(got) == WEIGHTS
    _, other = ApiToken.issue(user=lumi["people"]["rec_se"])
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {other}")
    assert api.get(url).status_code == 403
