"""Steps of the browser journeys about people and their second factor: a new person made
in the running demo's database, and the time passing since their last second factor."""

from __future__ import annotations

from tests.steps.browser import Site

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
