"""Steps of the browser journeys about people and their second factor: a new person made
in the running demo's database, the time passing since their last second factor, and
the authenticator-app code they may type next (a code, once used, is refused)."""

from __future__ import annotations

import json
import time

from tests.steps.browser import Site, totp_code

# The newcomers' password, made for these journeys only.
PASSWORD = "a long passphrase for the journeys"


def new_person(site: Site, username: str, *, password: str = PASSWORD) -> str:
    """A person who may use the admin but has no second factor yet (a newcomer, as the
    secretariat would create them): staff, no seat, no device. Returns the password."""
    site.manage(
        "shell",
        "-c",
        "from django.contrib.auth import get_user_model; "
        f"get_user_model().objects.create_user({username!r}, password={password!r}, "
        "is_staff=True)",
    )
    return password


def second_factor_long_ago(site: Site, page, *, seconds: int = 3600) -> None:
    """The page's session used its second factor ``seconds`` ago (a person who signed in
    in the morning): the next act that binds a member asks for it again."""
    key = next(c["value"] for c in page.context.cookies() if c["name"] == "sessionid")
    site.manage(
        "shell",
        "-c",
        "from django.contrib.sessions.backends.db import SessionStore; "
        f"s = SessionStore(session_key={key!r}); "
        f"s['second_factor_at'] = s['second_factor_at'] - {seconds}; s.save()",
    )


def _last_used_period(site: Site, username: str) -> int:
    out = site.manage(
        "shell",
        "-c",
        "import json; from django_otp.plugins.otp_totp.models import TOTPDevice; "
        f"print(json.dumps([d.last_t for d in TOTPDevice.objects.filter(user__username={username!r})]))",
    )
    # The last line: the shell may first say what it imported.
    return max(json.loads(out.strip().splitlines()[-1]) or [-1])


def next_code_step(site: Site, username: str) -> int:
    """The ``step`` of :func:`totp_code` that ``username`` may type now: the app's code of
    a period after the last one they used (another journey may have used this period's),
    waiting for the next period when even the server's tolerance of one is not enough."""
    while True:
        last = _last_used_period(site, username)
        now = int(time.time()) // 30
        step = max(0, last - now + 1)
        if step <= 1:
            return step
        time.sleep(30 - time.time() % 30 + 0.5)


def app_code(site: Site, username: str) -> str:
    """The demo's authenticator-app code that ``username`` may type now."""
    return totp_code(site.demo["second_factor"]["totp_secret"], step=next_code_step(site, username))
