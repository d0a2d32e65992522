"""Signing a person in to the admin in a test, as if they had passed their second
factor (and, unless told otherwise, recently enough for a step-up)."""

from __future__ import annotations

import time

from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from consortium.web import stepup


def sign_in(client, user, *, stepped_up: bool = True):
    """Log ``user`` in on the Django test ``client`` with a verified second factor (an
    authenticator app, made if the user has none, recorded in the session the way
    ``django_otp.login`` does); with ``stepped_up`` the verification is recent enough for
    the acts that need one."""
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="test app", confirmed=True)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    if stepped_up:
        session[stepup.SESSION_KEY] = int(time.time())
    else:
        session.pop(stepup.SESSION_KEY, None)
    session.save()
    return client
