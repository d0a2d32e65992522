"""The browser's defences (docs/security.md): a Content-Security-Policy without
'unsafe-inline' or 'unsafe-eval' on every page, pages that need neither (no inline
script, style or handler), and production settings that `check --deploy` finds clean.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys

import pytest
from django.test import Client

from tests.steps.ledger import ROOT
from tests.steps.signin import sign_in

POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "frame-ancestors": "'none'",
    "form-action": "'self'",
    "base-uri": "'none'",
    "object-src": "'none'",
}

# <script> with a body (a JSON data block is not run), style="", on...= handlers, <style>.
INLINE = re.compile(
    r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>\s*\S"
    r"|\sstyle=\"|\son[a-z]+=\"|<style[\s>]",
    re.IGNORECASE,
)


def policy_of(response) -> dict:
    header = response["Content-Security-Policy"]
    return dict(part.strip().split(" ", 1) for part in header.split(";") if part.strip())


@pytest.fixture
def delegate(django_user_model):
    return django_user_model.objects.create_superuser("delegate", "d@example.org", "pw-9-unused")


def test_the_password_page_carries_the_policy(client, db):
    r = client.get("/admin/login/")
    assert policy_of(r) == POLICY
    assert "unsafe" not in r["Content-Security-Policy"]
    assert not INLINE.search(r.content.decode())


def test_the_api_docs_need_no_exception(client, db):
    r = client.get("/api/v1/docs/")
    assert r.status_code == 200
    assert policy_of(r) == POLICY
    assert not INLINE.search(r.content.decode())
    init = client.get("/api/v1/docs/?script=")
    assert init["Content-Type"].startswith("application/javascript")


@pytest.mark.parametrize(
    "url",
    [
        "/admin/",
        "/admin/security/",
        "/admin/security/step-up/",
        "/admin/security/codes/regenerate/",
        "/admin/ledger/entry/",
        "/admin/consortium/apitoken/",
        "/admin/consortium/member/",
        "/admin/auth/user/add/",
        "/admin/security/signin/enrol/totp/",
    ],
)
def test_the_pages_a_delegate_uses_hold_no_inline_script_or_style(client, delegate, url):
    sign_in(client, delegate)
    r = client.get(url)
    assert r.status_code == 200, (url, r.status_code)
    assert policy_of(r) == POLICY
    found = INLINE.search(r.content.decode())
    assert not found, (url, found and found.group(0))


def test_the_sign_in_pages_hold_no_inline_script_or_style(client, delegate):
    client.post("/admin/login/", {"username": "delegate", "password": "pw-9-unused"})
    for url in ("/admin/security/signin/enrol/", "/admin/security/signin/enrol/totp/"):
        r = client.get(url)
        assert r.status_code == 200 and not INLINE.search(r.content.decode()), url
    sign_in(client, delegate)
    client.post("/admin/logout/")
    client.post("/admin/login/", {"username": "delegate", "password": "pw-9-unused"})
    r = client.get("/admin/security/signin/verify/")
    assert r.status_code == 200 and not INLINE.search(r.content.decode())


def test_the_lockout_page_holds_no_inline_script_or_style(delegate):
    c = Client(REMOTE_ADDR="192.0.2.9")
    for n in range(5):
        r = c.post("/admin/login/", {"username": "delegate", "password": f"no {n}"})
    assert r.status_code == 429 and not INLINE.search(r.content.decode())


def production_env(**extra) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SECURE_", "SESSION_", "CSRF_", "DEBUG", "AXES_"))
    }
    env.update(
        SECRET_KEY=secrets.token_urlsafe(50),
        LEDGER_KEK=secrets.token_hex(32),
        ALLOWED_HOSTS="ledger.consortium.example",
        DEBUG="0",
        DJANGO_SETTINGS_MODULE="consortium.settings",
    )
    env.update(extra)
    return env


def test_check_deploy_finds_production_settings_clean(tmp_path):
    r = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=production_env(VAR_DIR=str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "System check identified no issues" in r.stdout


def test_check_deploy_warns_when_https_is_turned_off(tmp_path):
    r = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=production_env(VAR_DIR=str(tmp_path), SECURE_SSL_REDIRECT="0"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode != 0 and "security.W008" in r.stderr + r.stdout


def test_a_server_known_by_its_address_alone_still_starts(tmp_path):
    # No host name, so no passkey can be made there (a relying party is a domain), but the
    # passkey library's own check must not stop the server or its commands from starting.
    r = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=production_env(VAR_DIR=str(tmp_path), ALLOWED_HOSTS="127.0.0.1"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stdout + r.stderr
