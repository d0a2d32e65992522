"""Lockout (django-axes, docs/security.md): AXES_FAILURE_LIMIT wrong passwords for one
user name from one client address lock that pair out, even with the right password,
for AXES_COOLOFF_MINUTES; the address is REMOTE_ADDR unless TRUSTED_PROXY_COUNT says how
many proxies append to X-Forwarded-For, so a forged header does not escape the lockout.

Personas: a delegate at 192.0.2.10 whose password someone guesses; a colleague at the
same address; the delegate again from another address.
"""

from __future__ import annotations

import pytest
from django.test import Client, RequestFactory

from consortium.web.clientip import client_address

PASSWORD = "the right one, at last 42"
HOME = "192.0.2.10"


@pytest.fixture
def people(django_user_model):
    return {
        name: django_user_model.objects.create_superuser(name, f"{name}@example.org", PASSWORD)
        for name in ("delegate", "colleague")
    }


def attempt(username, password, *, address=HOME, **headers):
    client = Client(REMOTE_ADDR=address)
    r = client.post(
        "/admin/login/?next=/admin/", {"username": username, "password": password}, **headers
    )
    return r, client


def five_wrong(username="delegate", **kwargs):
    for n in range(5):
        r, _ = attempt(username, f"wrong {n}", **kwargs)
        # The form again with its error, and at the fifth the lockout page.
        assert r.status_code == (429 if n == 4 else 200)


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


def test_five_failures_lock_out_even_the_right_password(people):
    five_wrong()
    r, client = attempt("delegate", PASSWORD)
    assert r.status_code == 429
    page = r.content.decode()
    assert "Signing in is locked for a while" in page and "Try again in 15 minutes" in page
    assert r["Retry-After"] == "900"
    assert not signed_in(client)


def test_four_failures_then_the_right_password_signs_in_and_resets_the_count(people):
    for n in range(4):
        attempt("delegate", f"wrong {n}")
    r, client = attempt("delegate", PASSWORD)
    assert r.status_code == 302 and signed_in(client)
    for n in range(4):
        attempt("delegate", f"wrong again {n}")
    r, client = attempt("delegate", PASSWORD)
    assert r.status_code == 302 and signed_in(client)


def test_a_forged_x_forwarded_for_does_not_escape_the_lockout(people):
    five_wrong(HTTP_X_FORWARDED_FOR="203.0.113.1")
    r, client = attempt("delegate", PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.77")
    assert r.status_code == 429 and not signed_in(client)


def test_another_user_at_the_same_address_is_not_locked_out(people):
    five_wrong()
    r, client = attempt("colleague", PASSWORD)
    assert r.status_code == 302 and signed_in(client)


def test_the_same_user_from_another_address_is_not_locked_out(people):
    five_wrong()
    r, client = attempt("delegate", PASSWORD, address="198.51.100.5")
    assert r.status_code == 302 and signed_in(client)


def test_the_limit_is_a_setting(people, settings):
    settings.AXES_FAILURE_LIMIT = 2
    attempt("delegate", "wrong 1")
    r, _ = attempt("delegate", "wrong 2")
    assert r.status_code == 429


def test_behind_one_trusted_proxy_the_address_it_saw_is_the_key(settings):
    factory = RequestFactory()
    forged_then_proxy = factory.get(
        "/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="203.0.113.1, 192.0.2.10"
    )
    assert client_address(forged_then_proxy) == "10.0.0.2"  # no proxy trusted
    settings.TRUSTED_PROXY_COUNT = 1
    assert client_address(forged_then_proxy) == "192.0.2.10"
    settings.TRUSTED_PROXY_COUNT = 2
    assert client_address(forged_then_proxy) == "203.0.113.1"
    no_header = factory.get("/", REMOTE_ADDR="10.0.0.2")
    assert client_address(no_header) == "10.0.0.2"


def test_behind_a_trusted_proxy_a_forged_prefix_does_not_escape_the_lockout(people, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    for n in range(5):
        attempt(
            "delegate",
            f"wrong {n}",
            address="10.0.0.2",
            HTTP_X_FORWARDED_FOR=f"203.0.113.{n}, {HOME}",
        )
    r, client = attempt(
        "delegate", PASSWORD, address="10.0.0.2", HTTP_X_FORWARDED_FOR=f"198.51.100.9, {HOME}"
    )
    assert r.status_code == 429 and not signed_in(client)
