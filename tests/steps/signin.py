"""Signing a person in to the admin in a test, as if they had passed their second
factor (and, unless told otherwise, recently enough for a step-up)."""

from __future__ import annotations

import time

from consortium.web import stepup


def sign_in(client, user, *, stepped_up: bool = True):
    """Log ``user`` in on the Django test ``client`` with a verified second factor;
    with ``stepped_up`` the verification is recent enough for the acts that need one."""
    client.force_login(user)
    session = client.session
    if stepped_up:
        session[stepup.SESSION_KEY] = int(time.time())
    else:
        session.pop(stepup.SESSION_KEY, None)
    session.save()
    return client
