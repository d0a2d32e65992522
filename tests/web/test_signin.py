"""Signing in to the admin takes a password and a second factor (docs/security.md).

Personas: a delegate (a superuser here: every admin page is open to them once signed in),
who signs in with a password and then an authenticator app's code, a recovery code or a
passkey; before the second factor, no admin page and no API call through the session.
"""

from __future__ import annotations

import re

import pytest
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from consortium.web import stepup
from consortium.web.signin import issue_recovery_codes

PASSWORD = "correct horse battery staple 7"

ADMIN_PAGES = [
    "/admin/",
    "/admin/ledger/entry/",
    "/admin/consortium/apitoken/",
    "/admin/auth/user/",
    "/admin/security/",
    "/admin/security/step-up/",
    "/admin/security/codes/regenerate/",
]


@pytest.fixture
def delegate(django_user_model):
    return django_user_model.objects.create_superuser("delegate", "d@example.org", PASSWORD)


def password_only(client, username="delegate"):
    """The admin's password page, and nothing more."""
    r = client.post("/admin/login/?next=/admin/", {"username": username, "password": PASSWORD})
    assert r.status_code == 302, r.content
    return client


def app_of(user) -> TOTPDevice:
    return TOTPDevice.objects.create(user=user, name="phone", confirmed=True)


def code_now(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift):06d}"


@pytest.mark.parametrize("url", ADMIN_PAGES)
def test_a_password_alone_is_sent_to_enrolment_on_every_admin_page(client, delegate, url):
    password_only(client)
    r = client.get(url)
    assert r.status_code == 302
    assert r["Location"].startswith("/admin/security/signin/enrol/?next=")


@pytest.mark.parametrize("url", ADMIN_PAGES)
def test_a_password_alone_is_sent_to_verification_when_a_device_exists(client, delegate, url):
    app_of(delegate)
    password_only(client)
    r = client.get(url)
    assert r.status_code == 302
    assert r["Location"].startswith("/admin/security/signin/verify/?next=")


def test_the_code_of_the_app_opens_the_admin_and_counts_as_a_recent_second_factor(client, delegate):
    device = app_of(delegate)
    password_only(client)
    r = client.post(
        "/admin/security/signin/verify/",
        {"code": code_now(device), "next": "/admin/ledger/entry/"},
    )
    assert r.status_code == 302 and r["Location"] == "/admin/ledger/entry/"
    assert client.get("/admin/ledger/entry/").status_code == 200
    assert isinstance(client.session[stepup.SESSION_KEY], int)


def test_a_wrong_code_opens_nothing(client, delegate):
    device = app_of(delegate)
    password_only(client)
    wrong = f"{(int(code_now(device)) + 1) % 1_000_000:06d}"
    r = client.post("/admin/security/signin/verify/", {"code": wrong})
    assert r.status_code == 200
    assert "That code is not valid" in r.content.decode()
    assert client.get("/admin/").status_code == 302
    assert stepup.SESSION_KEY not in client.session


def test_a_recovery_code_works_once(client, delegate):
    app_of(delegate)
    codes = issue_recovery_codes(delegate)
    assert len(codes) == 10 and len(set(codes)) == 10
    password_only(client)
    r = client.post("/admin/security/signin/verify/", {"code": codes[0].upper()})
    assert r.status_code == 302 and r["Location"] == "/admin/"
    page = client.get("/admin/")
    assert page.status_code == 200 and "Recovery code used: 9 left" in page.content.decode()
    client.post("/admin/logout/")
    password_only(client)
    r = client.post("/admin/security/signin/verify/", {"code": codes[0]})
    assert r.status_code == 200 and "already used" in r.content.decode()
    assert client.get("/admin/").status_code == 302


@pytest.mark.parametrize(
    "next_url", ["https://evil.example/", "//evil.example/admin/", "javascript:alert(1)"]
)
def test_verification_never_sends_the_browser_off_site(client, delegate, next_url):
    device = app_of(delegate)
    password_only(client)
    r = client.post("/admin/security/signin/verify/", {"code": code_now(device), "next": next_url})
    assert r.status_code == 302 and r["Location"] == "/admin/"


def test_enrolment_offers_a_passkey_first_and_an_app_as_the_fallback(client, delegate):
    password_only(client)
    page = client.get("/admin/security/signin/enrol/?next=/admin/").content.decode()
    assert page.index('id="passkey-register-button"') < page.index(
        "/admin/security/signin/enrol/totp/"
    )
    assert "django_otp_webauthn/otp_webauthn_register.js" in page
    assert 'id="otp_webauthn_config" type="application/json"' in page


def test_enrolling_an_app_shows_ten_recovery_codes_once_then_opens_the_admin(client, delegate):
    password_only(client)
    page = client.get("/admin/security/signin/enrol/totp/").content.decode()
    assert '<svg width="' in page and 'class="segno"' in page
    secret = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', page).group(1)
    device = TOTPDevice.objects.get(user=delegate, confirmed=False)
    assert secret.replace(" ", "") in device.config_url
    r = client.post("/admin/security/signin/enrol/totp/", {"code": code_now(device)})
    assert r.status_code == 302 and r["Location"].startswith("/admin/security/codes/")
    shown = client.get(r["Location"]).content.decode()
    codes = re.findall(r"<li>([a-z2-7]{8,})</li>", shown)
    assert len(codes) == 10
    assert client.get("/admin/security/codes/").status_code == 302  # shown once
    assert client.get("/admin/").status_code == 200
    device.refresh_from_db()
    assert device.confirmed


def test_a_wrong_first_code_does_not_enrol_the_app(client, delegate):
    password_only(client)
    client.get("/admin/security/signin/enrol/totp/")
    r = client.post("/admin/security/signin/enrol/totp/", {"code": "000000x"})
    assert r.status_code == 200 and "does not match" in r.content.decode()
    assert not TOTPDevice.objects.filter(user=delegate, confirmed=True).exists()
    assert client.get("/admin/").status_code == 302


def test_passkey_registration_begins_for_a_signed_in_person_with_no_device(client, delegate):
    password_only(client)
    r = client.post("/admin/security/webauthn/registration/begin/")
    assert r.status_code == 200, r.content
    options = r.json()
    assert options["rp"]["id"] == "testserver" and options["challenge"]
    assert options["user"]["name"] == "delegate"


def test_a_password_alone_cannot_add_a_passkey_to_an_account_that_has_a_device(client, delegate):
    app_of(delegate)
    password_only(client)
    r = client.post("/admin/security/webauthn/registration/begin/")
    assert r.status_code == 403


def test_passkey_verification_is_offered_first_to_a_person_who_has_one(client, delegate):
    from django_otp_webauthn.models import WebAuthnCredential

    app_of(delegate)
    WebAuthnCredential.objects.create(
        user=delegate,
        name="laptop",
        confirmed=True,
        credential_id_sha256="00" * 32,
        credential_id=b"\x00" * 16,
        public_key=b"\x00",
        sign_count=0,
    )
    password_only(client)
    page = client.get("/admin/security/signin/verify/").content.decode()
    assert page.index('id="passkey-verification-button"') < page.index('name="code"')
    assert "django_otp_webauthn/otp_webauthn_auth.js" in page
    r = client.post("/admin/security/webauthn/authentication/begin/")
    assert r.status_code == 200 and r.json()["challenge"]


def test_the_api_refuses_a_session_that_has_not_passed_its_second_factor(client, delegate):
    app_of(delegate)
    password_only(client)
    r = client.get("/api/v1/delegates/self")
    assert r.status_code == 401
    assert "second factor" in r.json()["detail"]


def test_the_api_takes_a_verified_session(client, delegate):
    device = app_of(delegate)
    password_only(client)
    client.post("/admin/security/signin/verify/", {"code": code_now(device)})
    r = client.get("/api/v1/members")
    assert r.status_code == 200, r.content
    assert r.json()["results"] == []


def test_the_admin_never_shows_a_persons_app_secret_or_recovery_codes(admin_client, delegate):
    device = app_of(delegate)
    codes = issue_recovery_codes(delegate)
    page = admin_client.get(f"/admin/otp_totp/totpdevice/{device.pk}/change/")
    assert page.status_code == 200
    assert device.key not in page.content.decode()
    assert admin_client.get(f"/admin/otp_totp/totpdevice/{device.pk}/qrcode/").status_code == 403
    static = admin_client.get("/admin/otp_static/staticdevice/").content.decode()
    assert codes[0] not in static


def test_the_first_set_of_recovery_codes_is_made_once_only(client, delegate):
    from tests.steps.signin import sign_in

    sign_in(client, delegate)  # as after a first passkey
    page = client.get("/admin/security/codes/?first=1").content.decode()
    assert len(re.findall(r"<li>([a-z2-7]{8,})</li>", page)) == 10
    again = client.get("/admin/security/codes/?first=1")
    assert again.status_code == 302 and again["Location"] == "/admin/security/"
