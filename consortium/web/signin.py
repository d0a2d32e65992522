"""Signing in with a second factor (docs/security.md): a password alone opens nothing.

After the admin's password page, a session is *unverified* until the person uses a
passkey, an authenticator app's code or a recovery code (django-otp's
``request.user.is_verified()``). Until then the admin sends them to the verification
page (or, with no device yet, to enrolment), and the REST API does not count the
session at all. Bearer tokens are unaffected: each was made after a step-up.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.shortcuts import redirect
from django.urls import reverse
from django_otp import devices_for_user
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp_webauthn import views as webauthn_views

from consortium.web import stepup

RECOVERY_CODES = 10
RECOVERY_DEVICE_NAME = "recovery codes"


def has_a_device(user) -> bool:
    """A confirmed device to verify with: a passkey, an authenticator app, or recovery
    codes that are left."""
    for device in devices_for_user(user, confirmed=True):
        if not isinstance(device, StaticDevice) or device.token_set.exists():
            return True
    return False


def issue_recovery_codes(user) -> list[str]:
    """A new set of single-use recovery codes for ``user``, replacing any earlier set;
    the codes are shown once, by the caller."""
    device, _created = StaticDevice.objects.get_or_create(
        user=user, name=RECOVERY_DEVICE_NAME, defaults={"confirmed": True}
    )
    device.token_set.all().delete()
    codes = [StaticToken.random_token() for _i in range(RECOVERY_CODES)]
    StaticToken.objects.bulk_create(StaticToken(device=device, token=c) for c in codes)
    return codes


def second_factor_url(request) -> str:
    """Where an unverified session goes: verification, or enrolment without a device."""
    name = "signin-verify" if has_a_device(request.user) else "signin-enrol"
    query = urlencode({"next": request.get_full_path()}) if request.method == "GET" else ""
    return reverse(name) + (f"?{query}" if query else "")


def _exempt_paths() -> tuple[str, ...]:
    return (
        reverse("admin:login"),
        reverse("admin:logout"),
        reverse("signin-enrol"),  # and the pages under it
        reverse("signin-verify"),
        reverse("otp_webauthn:credential-registration-begin").rsplit("/registration/", 1)[0],
    )


class SecondFactorMiddleware:
    """An authenticated but unverified session reaches, under /admin/, only the password
    page, logging out, enrolment, verification and the passkey endpoints; anything else
    sends it to verification (or enrolment), and back afterwards."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if (
            user is not None
            and user.is_authenticated
            and not user.is_verified()
            and request.path.startswith("/admin/")
            and not request.path.startswith(_exempt_paths())
        ):
            return redirect(second_factor_url(request))
        return self.get_response(request)


# --- passkeys (django-otp-webauthn) ---------------------------------------------------------


def relying_party_id(request) -> str:
    """The passkeys' relying party: OTP_WEBAUTHN_RP_ID, else the host the browser asked."""
    configured = getattr(settings, "OTP_WEBAUTHN_RP_ID", "")
    return configured or request.get_host().rsplit(":", 1)[0]


class PasskeyRegistrationComplete(webauthn_views.CompleteCredentialRegistrationView):
    """Registering the first passkey is enrolment: the session counts as verified (the
    library does so) and a second factor as just used."""

    def post(self, *args, **kwargs):
        was_verified = self.request.user.is_verified()
        response = super().post(*args, **kwargs)
        if response.status_code == 200 and not was_verified and self.request.user.is_verified():
            stepup.mark_second_factor(self.request)
        return response


class PasskeyAuthenticationComplete(webauthn_views.CompleteCredentialAuthenticationView):
    """A passkey used at sign-in or at a step-up: a second factor, just now."""

    def complete_auth(self, device):
        super().complete_auth(device)
        stepup.mark_second_factor(self.request)
