"""The REST API and the second factor (docs/security.md): a session counts only once it
passed its second factor, and a session's acts that bind a member need a recent one.
Kept apart from consortium.web.signin, which DRF's settings would import too early."""

from __future__ import annotations

import functools

from django.conf import settings
from django.urls import reverse
from django.utils.translation import gettext as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from consortium.web import stepup


class VerifiedSessionAuthentication(authentication.SessionAuthentication):
    """DRF's session authentication, for sessions that passed their second factor only:
    otherwise a password alone would reach the API through the session cookie."""

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is None:
            return None
        user = result[0]
        if not getattr(user, "is_verified", lambda: False)():
            raise exceptions.AuthenticationFailed(
                _("this session has not passed its second factor: verify at %(url)s")
                % {"url": reverse("signin-verify")}
            )
        return result


class VerifiedSessionScheme(OpenApiAuthenticationExtension):
    """The session cookie in the OpenAPI description, as drf-spectacular describes DRF's
    own session authentication."""

    target_class = VerifiedSessionAuthentication
    name = "cookieAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "cookie",
            "name": settings.SESSION_COOKIE_NAME,
            "description": "The admin's session, once it passed its second factor.",
        }


def session_stepup_required(view):
    """For an API view method (``self, request, ...``) of an act that binds a member:
    a session (not a bearer token) must have used its second factor within
    ``STEPUP_SECONDS``; otherwise 403 saying where to step up."""

    @functools.wraps(view)
    def wrapped(self, request, *args, **kwargs):
        if request.auth is None and not stepup.has_recent_second_factor(request):
            minutes = max(1, stepup.window_seconds() // 60)
            # Imported here: problems imports DRF's views, which import this module
            # (through DEFAULT_AUTHENTICATION_CLASSES) while they load.
            from consortium.web.problems import ProblemException

            raise ProblemException(
                403,
                _(
                    "a second factor within the last %(minutes)d minutes is needed: "
                    "%(url)s, then send the request again"
                )
                % {"minutes": minutes, "url": reverse("stepup")},
            )
        return view(self, request, *args, **kwargs)

    return wrapped
