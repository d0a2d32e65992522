"""A seat holder makes, sees and revokes the API tokens of its partner systems in the
admin. People (tests/personas.py, the delegates' world): fr, France's signatory, and
rec_fr, its recorder, each see only their own tokens; ops, the secretariat, sees and
revokes every token; newcomer holds no seat and has no token page. Making and revoking a
token need a recent second factor. Tokens are local credentials (only the secret's hash
is kept), not ledger entries."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from consortium.governance.models import ApiToken
from ledger.models import Entry
from tests import worlds
from tests.steps.signin import sign_in

delegates = worlds.shared("delegates")

LIST = "/admin/consortium/apitoken/"
NEW = "/admin/consortium/apitoken/new/"


def make(client, name="scheduler", days="30"):
    response = client.post(NEW, {"name": name, "days": days})
    assert response.status_code == 200
    page = response.content.decode()
    match = re.search(r'id="token-plaintext">(clt_[^<]+)<', page)
    return (match.group(1) if match else None), page


def api(plaintext):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return client


def test_a_signatory_makes_a_token_shown_once_that_acts_with_its_seat(client, delegates):
    sign_in(client, delegates["fr"])
    form = client.get(NEW).content.decode()
    assert 'value="90"' in form  # API_TOKEN_DEFAULT_DAYS
    entries = Entry.objects.count()
    plaintext, page = make(client, "France scheduler", "7")
    assert plaintext and "shown only this once" in page
    token = ApiToken.objects.get(name="France scheduler")
    assert token.user == delegates["fr"] and str(token.seat) == "signatory of FR"
    # Only its hash is kept; the list and the token's page never show it again.
    assert plaintext.split("_")[-1] not in token.secret_hash
    listing = client.get(LIST).content.decode()
    assert "France scheduler" in listing and plaintext not in listing
    detail = client.get(f"{LIST}{token.pk}/change/").content.decode()
    assert plaintext not in detail and token.key_id in detail
    # A local credential: no ledger entry records it.
    assert Entry.objects.count() == entries
    r = api(plaintext).get("/api/v1/delegates/self")
    assert r.status_code == 200 and r.json()["member"] == "FR"


@pytest.mark.parametrize("days", ["0", "367"])
def test_a_lifetime_out_of_range_is_refused(client, delegates, days):
    sign_in(client, delegates["fr"])
    plaintext, page = make(client, days=days)
    assert plaintext is None and "errorlist" in page
    assert not ApiToken.objects.exists()


def test_a_delegate_sees_and_revokes_only_its_own_tokens(client, delegates):
    sign_in(client, delegates["rec_fr"])
    make(client, "recorder import job")
    sign_in(client, delegates["fr"])
    make(client, "signatory voter")
    theirs = ApiToken.objects.get(name="recorder import job")
    listing = client.get(LIST).content.decode()
    assert "signatory voter" in listing and "recorder import job" not in listing
    assert client.get(f"{LIST}{theirs.pk}/revoke/").status_code == 404
    assert client.post(f"{LIST}{theirs.pk}/revoke/").status_code == 404
    assert (
        "recorder import job"
        not in client.get(f"{LIST}{theirs.pk}/change/", follow=True).content.decode()
    )
    theirs.refresh_from_db()
    assert theirs.revoked_at is None


def test_revoking_asks_for_confirmation_then_the_token_is_refused(client, delegates):
    sign_in(client, delegates["fr"])
    plaintext, _ = make(client)
    token = ApiToken.objects.get()
    confirm = client.get(f"{LIST}{token.pk}/revoke/").content.decode()
    assert "cannot be undone" in confirm and token.key_id in confirm
    token.refresh_from_db()
    assert token.revoked_at is None  # asking is not revoking
    response = client.post(f"{LIST}{token.pk}/revoke/", follow=True)
    assert "Revoked the token" in response.content.decode()
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert api(plaintext).get("/api/v1/delegates/self").status_code == 401


def test_the_secretariat_sees_and_revokes_any_token(client, delegates):
    sign_in(client, delegates["de"])
    make(client, "Germany system")
    token = ApiToken.objects.get()
    ops = Client()
    sign_in(ops, delegates["ops"])
    assert "Germany system" in ops.get(LIST).content.decode()
    ops.post(f"{LIST}{token.pk}/revoke/")
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_someone_without_a_seat_has_no_token_page(client, delegates):
    sign_in(client, delegates["newcomer"])
    assert client.get(LIST).status_code in (302, 403)
    assert client.get(NEW).status_code in (302, 403)
    assert not ApiToken.objects.exists()


def test_making_or_revoking_a_token_needs_a_recent_second_factor(client, delegates):
    sign_in(client, delegates["fr"])
    make(client)
    token = ApiToken.objects.get()
    sign_in(client, delegates["fr"], stepped_up=False)
    for url in (NEW, f"{LIST}{token.pk}/revoke/"):
        response = client.post(url, {"name": "again", "days": "5"})
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("stepup") + "?next=")
    token.refresh_from_db()
    assert token.revoked_at is None and ApiToken.objects.count() == 1


def test_the_token_list_is_in_the_navigation(client, delegates):
    sign_in(client, delegates["obs_de"])
    page = client.get("/admin/").content.decode()
    assert reverse("admin:consortium_apitoken_changelist") in page
