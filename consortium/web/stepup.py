"""Step-up: the acts that bind a member (signing an agreement, voting, asking for a
download, rotating or revoking a key, making an API token) need a second factor used
within the last ``STEPUP_SECONDS`` (five minutes by default), in this session.

The sign-in and step-up views call :func:`mark_second_factor` when a device (a passkey,
a TOTP code or a recovery code) has just been verified; the views of those acts are
wrapped in :func:`stepup_required`, so that the ledger entry is only ever written after
it. A bearer token (a partner system) was itself made after a step-up and acts without
one.
"""

from __future__ import annotations

import functools
import time
from urllib.parse import urlencode

from django.conf import settings
from django.shortcuts import redirect
from django.urls import reverse

SESSION_KEY = "second_factor_at"


def window_seconds() -> int:
    return int(getattr(settings, "STEPUP_SECONDS", 300))


def mark_second_factor(request) -> None:
    """Record that a second factor was verified in this session just now."""
    request.session[SESSION_KEY] = int(time.time())


def seconds_since_second_factor(request) -> float | None:
    at = request.session.get(SESSION_KEY) if hasattr(request, "session") else None
    if not isinstance(at, int):
        return None
    return time.time() - at


def has_recent_second_factor(request) -> bool:
    """True when this session verified a second factor within the window."""
    elapsed = seconds_since_second_factor(request)
    return elapsed is not None and 0 <= elapsed <= window_seconds()


def stepup_url(next_url: str) -> str:
    return f"{reverse('stepup')}?{urlencode({'next': next_url})}"


def stepup_required(view):
    """Wrap a view (a function taking the request first, or a ModelAdmin method taking
    ``self, request``) so that it runs only after a recent second factor; otherwise the
    browser is sent to the step-up page, which comes back to the page asked for (a POST
    is never replayed: the person sees the page again and confirms again)."""

    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        request = args[0] if hasattr(args[0], "session") else args[1]
        if has_recent_second_factor(request):
            return view(*args, **kwargs)
        return redirect(stepup_url(request.get_full_path()))

    return wrapped
