"""The pages of the second factor (docs/security.md): enrolment, verification at
sign-in, the step-up, and the person's own "Security" page with their devices."""

from __future__ import annotations

import base64

import segno
from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods
from django_otp import devices_for_user
from django_otp import login as otp_login
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

from consortium.web import stepup
from consortium.web.signin import RECOVERY_DEVICE_NAME, has_a_device, issue_recovery_codes

NEW_CODES_SESSION_KEY = "signin_new_recovery_codes"
TOTP_SESSION_KEY = "signin_totp_enrolment"


class CodeForm(forms.Form):
    code = forms.CharField(
        label=gettext_lazy("Code from your authenticator app, or a recovery code"),
        max_length=32,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "autocapitalize": "off", "spellcheck": "false"}
        ),
    )


class TotpForm(forms.Form):
    code = forms.CharField(
        label=gettext_lazy("The six-digit code your app shows now"),
        max_length=8,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )


def _safe_next(request, default: str) -> str:
    """``next`` when it is a local URL on this host, else ``default`` (no open redirect)."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


def _page(request, template: str, title: str, **context):
    return render(
        request,
        template,
        {**admin.site.each_context(request), "title": title, **context},
    )


def _verify_code(user, code: str):
    """The authenticator app or recovery-code device that accepts ``code``, or None (each
    device throttles its own failures: django-otp's ThrottlingMixin)."""
    code = "".join(code.split()).lower()
    for device in devices_for_user(user, confirmed=True):
        if isinstance(device, (TOTPDevice, StaticDevice)) and device.verify_token(code):
            return device
    return None


def _verification(request, *, template: str, title: str, done: str):
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        device = _verify_code(request.user, form.cleaned_data["code"])
        if device is not None:
            otp_login(request, device)
            stepup.mark_second_factor(request)
            if isinstance(device, StaticDevice):
                left = device.token_set.count()
                messages.warning(
                    request,
                    _("Recovery code used: %(left)d left. Make new ones on the Security page.")
                    % {"left": left},
                )
            return redirect(_safe_next(request, done))
        form.add_error(
            "code",
            _(
                "That code is not valid, or was already used: each code works once (for "
                "the app's, wait for its next one). Try again."
            ),
        )
    return _page(
        request,
        template,
        title,
        form=form,
        next=_safe_next(request, ""),
        has_passkey=WebAuthnCredential.objects.filter(user=request.user, confirmed=True).exists(),
    )


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def verify(request):
    """After the password: a passkey, an app's code or a recovery code."""
    if request.user.is_verified():
        return redirect(_safe_next(request, reverse("admin:index")))
    if not has_a_device(request.user):
        return redirect(reverse("signin-enrol") + _query(request))
    return _verification(
        request,
        template="admin/security/verify.html",
        title=_("Confirm it is you"),
        done=reverse("admin:index"),
    )


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def step_up(request):
    """A second factor again before an act that binds a member; back to ``next`` after."""
    return _verification(
        request,
        template="admin/security/stepup.html",
        title=_("Confirm it is you again"),
        done=reverse("security"),
    )


def _query(request) -> str:
    target = _safe_next(request, "")
    return f"?next={target}" if target else ""


@never_cache
@login_required
def enrol(request):
    """No device yet: set up a passkey (the main choice) or an authenticator app."""
    if request.user.is_verified() or has_a_device(request.user):
        return redirect(reverse("signin-verify") + _query(request))
    return _page(
        request,
        "admin/security/enrol.html",
        _("Set up your second factor"),
        next=_safe_next(request, ""),
        after_passkey=reverse("security-new-codes") + "?first=1",
    )


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def enrol_totp(request):
    """An authenticator app: a QR code and its secret; confirmed by the first code. Open
    to a session with no device yet (enrolment) or a verified one (another device)."""
    first = not request.user.is_verified()
    if first and has_a_device(request.user):
        return redirect(reverse("signin-verify"))
    device = TOTPDevice.objects.filter(
        user=request.user, confirmed=False, pk=request.session.get(TOTP_SESSION_KEY)
    ).first()
    if device is None:
        device = TOTPDevice.objects.create(
            user=request.user, name=_("authenticator app"), confirmed=False
        )
        request.session[TOTP_SESSION_KEY] = device.pk
    form = TotpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if device.verify_token("".join(form.cleaned_data["code"].split())):
            device.confirmed = True
            device.save()
            request.session.pop(TOTP_SESSION_KEY, None)
            if first:
                otp_login(request, device)
                stepup.mark_second_factor(request)
                request.session[NEW_CODES_SESSION_KEY] = issue_recovery_codes(request.user)
                return redirect(reverse("security-new-codes") + _query(request))
            messages.success(request, _("The authenticator app is set up."))
            return redirect("security")
        form.add_error("code", _("That code does not match. Check the app and try again."))
    secret = base64.b32encode(device.bin_key).decode().rstrip("=")
    qr = segno.make(device.config_url, error="m")
    return _page(
        request,
        "admin/security/enrol_totp.html",
        _("Use an authenticator app"),
        form=form,
        # segno writes the SVG itself (no user data in it but the otpauth URL, escaped).
        qr_svg=mark_safe(qr.svg_inline(scale=4, title=_("QR code for your authenticator app"))),  # noqa: S308
        secret=" ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
        next=_safe_next(request, ""),
        first=first,
    )


@never_cache
@login_required
def new_codes(request):
    """The recovery codes just made, shown once. After a first passkey there are none
    yet: they are made here (once: never for an account that has had a set)."""
    codes = request.session.pop(NEW_CODES_SESSION_KEY, None)
    # Only ever the first set: later ones are made on the Security page, after a step-up.
    if (
        codes is None
        and request.GET.get("first")
        and not StaticDevice.objects.filter(user=request.user).exists()
    ):
        codes = issue_recovery_codes(request.user)
    if codes is None:
        return redirect("security")
    return _page(
        request,
        "admin/security/codes.html",
        _("Your recovery codes"),
        codes=codes,
        next=_safe_next(request, reverse("admin:index")),
    )


def _devices(user) -> list[dict]:
    rows = []
    for device in devices_for_user(user, confirmed=True):
        if isinstance(device, StaticDevice):
            continue
        kind = _("Passkey") if isinstance(device, WebAuthnCredential) else _("Authenticator app")
        rows.append({"device": device, "kind": kind, "id": device.persistent_id})
    return rows


@never_cache
@login_required
def security(request):
    """The signed-in person's devices: passkeys, apps, recovery codes left."""
    codes = StaticDevice.objects.filter(user=request.user, name=RECOVERY_DEVICE_NAME).first()
    return _page(
        request,
        "admin/security/security.html",
        _("Security"),
        devices=_devices(request.user),
        codes_left=codes.token_set.count() if codes else 0,
    )


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
@stepup.stepup_required
def regenerate_codes(request):
    """New recovery codes (the old ones stop working); shown once."""
    if request.method == "POST":
        request.session[NEW_CODES_SESSION_KEY] = issue_recovery_codes(request.user)
        return redirect(reverse("security-new-codes") + "?next=" + reverse("security"))
    return _page(request, "admin/security/regenerate.html", _("New recovery codes"))


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
@stepup.stepup_required
def remove_device(request, device_id: str):
    """Remove a passkey or an authenticator app; never the last one."""
    devices = _devices(request.user)
    row = next((d for d in devices if d["id"] == device_id), None)
    if row is None:
        raise Http404(_("no such device of yours"))
    if len(devices) < 2:
        raise PermissionDenied(_("this is your last passkey or app: add another first"))
    if request.method == "POST":
        row["device"].delete()
        messages.success(request, _("%(kind)s removed.") % {"kind": row["kind"]})
        return redirect("security")
    return _page(request, "admin/security/remove.html", _("Remove a device"), row=row)


def lockout(request, original_response=None, credentials=None):
    """The page after too many wrong passwords for one user name from one address
    (django-axes' AXES_LOCKOUT_CALLABLE): 429, with when to try again."""
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    response = render(
        request,
        "admin/lockout.html",
        {
            **admin.site.each_context(request),
            "title": _("Signing in is locked for a while"),
            "minutes": minutes,
        },
        status=429,
    )
    response["Retry-After"] = str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
    return response
