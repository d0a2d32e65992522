"""Step-up: the acts that bind a member need a second factor used within STEPUP_SECONDS
(docs/security.md), in the admin (sent to the step-up page and back) and through the API
with a session (403 saying where to step up); a bearer token acts without one.

Personas (tests/personas.py): fr, the signatory of France, rotates France's key; a
delegate (superuser) manages their own devices and API tokens.
"""

from __future__ import annotations

import datetime as dt
from urllib.parse import quote

import pytest
import time_machine
from django.utils import timezone
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from consortium.governance.models import ApiToken
from consortium.web.signin import issue_recovery_codes
from ledger.services import Entry
from tests.steps.api import api_as
from tests.steps.signin import sign_in


@pytest.fixture
def delegate(django_user_model):
    return django_user_model.objects.create_superuser("delegate", "d@example.org", "pw-unused-9")


def code_now(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift):06d}"


def test_making_new_recovery_codes_needs_a_recent_second_factor(client, delegate):
    sign_in(client, delegate, stepped_up=False)
    r = client.get("/admin/security/codes/regenerate/")
    assert r.status_code == 302
    assert r["Location"] == "/admin/security/step-up/?next=" + quote(
        "/admin/security/codes/regenerate/", safe=""
    )


def test_the_step_up_expires_after_stepup_seconds_and_a_code_renews_it(client, delegate):
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        sign_in(client, delegate, stepped_up=True)
        assert client.get("/admin/security/codes/regenerate/").status_code == 200
        clock.move_to(start + dt.timedelta(seconds=301))
        r = client.get("/admin/security/codes/regenerate/")
        assert r.status_code == 302 and "/admin/security/step-up/" in r["Location"]
        # The session is still signed in: only the acts that bind need the step-up.
        assert client.get("/admin/").status_code == 200
        device = TOTPDevice.objects.get(user=delegate)
        r = client.post(
            "/admin/security/step-up/",
            {"code": code_now(device), "next": "/admin/security/codes/regenerate/"},
        )
        assert r.status_code == 302 and r["Location"] == "/admin/security/codes/regenerate/"
        assert client.get("/admin/security/codes/regenerate/").status_code == 200


def test_a_recovery_code_serves_for_a_step_up(client, delegate):
    sign_in(client, delegate, stepped_up=False)
    codes = issue_recovery_codes(delegate)
    r = client.post("/admin/security/step-up/", {"code": codes[3], "next": "/admin/security/"})
    assert r.status_code == 302 and r["Location"] == "/admin/security/"
    assert client.get("/admin/security/codes/regenerate/").status_code == 200


@pytest.mark.parametrize(
    "next_url", ["https://evil.example/x", "//evil.example", "http://testserver.evil/"]
)
def test_the_step_up_never_sends_the_browser_off_site(client, delegate, next_url):
    sign_in(client, delegate, stepped_up=False)
    device = TOTPDevice.objects.get(user=delegate)
    r = client.post("/admin/security/step-up/", {"code": code_now(device), "next": next_url})
    assert r.status_code == 302 and r["Location"] == "/admin/security/"


def test_new_recovery_codes_replace_the_old_ones(client, delegate):
    old = issue_recovery_codes(delegate)
    sign_in(client, delegate)
    r = client.post("/admin/security/codes/regenerate/")
    assert r.status_code == 302
    page = client.get(r["Location"]).content.decode()
    assert old[0] not in page and page.count("<li>") >= 10
    assert "10 recovery codes left" in client.get("/admin/security/").content.decode()


def test_the_last_device_is_never_removed(client, delegate):
    sign_in(client, delegate)
    device = TOTPDevice.objects.get(user=delegate)
    url = f"/admin/security/devices/{device.persistent_id}/remove/"
    assert client.post(url).status_code == 403
    assert TOTPDevice.objects.filter(pk=device.pk).exists()


def test_a_device_is_removed_after_a_step_up_when_another_remains(client, delegate):
    sign_in(client, delegate, stepped_up=False)
    spare = TOTPDevice.objects.create(user=delegate, name="spare phone", confirmed=True)
    url = f"/admin/security/devices/{spare.persistent_id}/remove/"
    r = client.post(url)
    assert r.status_code == 302 and "/admin/security/step-up/" in r["Location"]
    assert TOTPDevice.objects.filter(pk=spare.pk).exists()
    sign_in(client, delegate, stepped_up=True)
    page = client.get("/admin/security/").content.decode()
    assert "spare phone" in page and url in page
    assert client.post(url).status_code == 302
    assert not TOTPDevice.objects.filter(pk=spare.pk).exists()


def test_revoking_an_api_token_in_the_admin_needs_a_step_up(client, delegate):
    token, _ = ApiToken.issue(user=delegate, name="partner", days=30)
    revoke = f"/admin/consortium/apitoken/{token.pk}/revoke/"
    sign_in(client, delegate, stepped_up=False)
    r = client.post(revoke)
    assert r.status_code == 302 and r["Location"].startswith("/admin/security/step-up/?next=")
    token.refresh_from_db()
    assert token.revoked_at is None
    sign_in(client, delegate, stepped_up=True)
    client.post(revoke)
    token.refresh_from_db()
    assert token.revoked_at is not None


# The decorator answers before the view looks anything up: any id will do.
NOBODY = "00000000-0000-4000-8000-000000000000"
STEPUP_ACTS = [
    ("/api/v1/members/FR/keys/rotation", {"name": "fr-2"}),
    ("/api/v1/members/FR/keys/abc/revocation", {"reason": "lost"}),
    (f"/api/v1/proposals/{NOBODY}/votes", {"choice": "yes"}),
    (f"/api/v1/agreements/{NOBODY}/signatures", {}),
    ("/api/v1/checkpoints/sha256:" + "0" * 64 + "/downloads", {"scope": "all"}),
]


@pytest.mark.parametrize(("url", "body"), STEPUP_ACTS)
def test_a_session_without_a_recent_second_factor_cannot_act_for_its_member(
    client, delegates, url, body
):
    sign_in(client, delegates["fr"], stepped_up=False)
    before = Entry.objects.count()
    r = client.post(url, body, content_type="application/json")
    assert r.status_code == 403, r.content
    detail = r.json()["detail"]
    assert detail.startswith("a second factor within the last 5 minutes is needed: ")
    assert "/admin/security/step-up/" in detail
    assert Entry.objects.count() == before


@pytest.mark.parametrize(("url", "body"), STEPUP_ACTS)
def test_a_stepped_up_session_or_a_bearer_token_is_not_asked_for_one(client, delegates, url, body):
    sign_in(client, delegates["fr"], stepped_up=True)
    for answer in (
        client.post(url, body, content_type="application/json"),
        api_as(delegates["fr"]).post(url, body, format="json"),
    ):
        assert "second factor" not in answer.content.decode(), answer.content


def test_a_session_rotates_its_members_key_after_a_step_up(client, delegates):
    sign_in(client, delegates["fr"], stepped_up=True)
    r = client.post(
        "/api/v1/members/FR/keys/rotation", {"name": "fr-2"}, content_type="application/json"
    )
    assert r.status_code == 201, r.content
