"""The demo's second factor: what a person at the terminal needs to sign in."""

from __future__ import annotations

import base64
import secrets

from django.conf import settings
from django_otp.plugins.otp_totp.models import TOTPDevice


def second_factor(users) -> dict:
    """Signing in takes a second factor: the demo's people share one authenticator-app
    secret (kept in var/ like the password), printed with a command that shows its
    current code, so that a person at the terminal can sign in; each may add a passkey
    on the Security page afterwards."""
    path = settings.VAR_DIR / "demo_totp_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(20))
        path.chmod(0o600)
    key = path.read_text().strip()
    for user in users:
        TOTPDevice.objects.update_or_create(
            user=user, name="demo authenticator app", defaults={"key": key, "confirmed": True}
        )
    secret = base64.b32encode(bytes.fromhex(key)).decode()
    return {
        "totp_secret": secret,
        "otpauth_url": f"otpauth://totp/Consortium%20ledger%20demo?secret={secret}"
        "&issuer=Consortium%20ledger",
        "code_command": (
            "python3 -c 'import base64,hmac,struct,time; "
            f'k = base64.b32decode("{secret}"); '
            'h = hmac.new(k, struct.pack(">Q", int(time.time()) // 30), "sha1").digest(); '
            "o = h[-1] & 15; "
            'print("%06d" % ((struct.unpack(">I", h[o:o + 4])[0] & 0x7FFFFFFF) % 1000000))\''
        ),
    }
