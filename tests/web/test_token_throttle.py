"""Invalid bearer tokens are throttled per client address (docs/security.md): after
API_TOKEN_FAILURE_LIMIT of them within API_TOKEN_FAILURE_WINDOW seconds, that address
gets 429 with Retry-After; a valid token from elsewhere is never slowed.

Personas: an outsider guessing tokens from 192.0.2.66; a partner system of Japan with a
valid token, at 198.51.100.20.
"""

from __future__ import annotations

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

BAD = "Bearer clt_000000000000_" + "x" * 30


@pytest.fixture(autouse=True)
def limit(settings):
    settings.API_TOKEN_FAILURE_LIMIT = 3
    settings.API_TOKEN_FAILURE_WINDOW = 120
    cache.clear()
    yield
    cache.clear()


def from_address(address: str, authorization: str) -> APIClient:
    c = APIClient(REMOTE_ADDR=address)
    c.credentials(HTTP_AUTHORIZATION=authorization)
    return c


def test_invalid_tokens_from_one_address_get_429_after_the_limit(partner):
    outsider = from_address("192.0.2.66", BAD)
    for _ in range(3):
        assert outsider.get("/api/v1/members").status_code == 401
    r = outsider.get("/api/v1/members")
    assert r.status_code == 429
    assert 1 <= int(r["Retry-After"]) <= 120
    assert r["Content-Type"] == "application/problem+json"
    # Guessing stops there: a right guess from that address is refused too.
    _, _, plaintext = partner
    assert (
        from_address("192.0.2.66", f"Bearer {plaintext}").get("/api/v1/members").status_code == 429
    )


def test_a_valid_token_from_another_address_is_not_slowed(partner):
    for _ in range(5):
        from_address("192.0.2.66", BAD).get("/api/v1/members")
    _, _, plaintext = partner
    japan = from_address("198.51.100.20", f"Bearer {plaintext}")
    for _ in range(10):
        assert japan.get("/api/v1/members").status_code == 403  # holds no seat: not throttled


def test_valid_tokens_never_count_towards_the_limit(partner):
    _, _, plaintext = partner
    japan = from_address("192.0.2.66", f"Bearer {plaintext}")
    for _ in range(10):
        assert japan.get("/api/v1/members").status_code == 403
    assert from_address("192.0.2.66", BAD).get("/api/v1/members").status_code == 401
