"""The lean path of the proof endpoints (consortium.leanreads): a proof GET by a bearer token
this process has just decided is answered before the rest of the middleware, with the
same bytes and headers as the full way; anything it is not sure of goes the full way,
which answers as it always did (an error included), and the lean path counts nothing.

Personas: France's recorder's partner system reading proofs; a partner system of Japan
with a valid token but no seat; an outsider guessing tokens."""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.test import override_settings
from prometheus_client import REGISTRY
from rest_framework.test import APIClient

from consortium.governance.auth import recent_reads
from consortium.governance.models import ApiToken
from ledger import services
from ledger.checkpoints import publish_checkpoint
from ledger.services import Draft

LEAN = "consortium.leanreads.LeanReadsMiddleware"
INCLUSION = "/api/v1/ledger/proofs/inclusion"
CONSISTENCY = "/api/v1/ledger/proofs/consistency"


def lean_count() -> float:
    return sum(
        REGISTRY.get_sample_value("consortium_lean_reads_total", {"route": route}) or 0.0
        for route in ("inclusion-proof", "consistency-proof")
    )


@pytest.fixture(autouse=True)
def kept(settings):
    """Bearer decisions kept for reads, as in production; nothing kept between tests."""
    settings.API_TOKEN_CACHE_SECONDS = 60
    recent_reads.clear()
    cache.clear()
    yield
    recent_reads.clear()
    cache.clear()


@pytest.fixture
def grown(sample_signer):
    services.entries_append(
        signer=sample_signer, drafts=[Draft("test.sample", {"n": i}) for i in range(38)]
    )
    publish_checkpoint()  # 40 entries


@pytest.fixture
def france(delegates):
    _, plaintext = ApiToken.issue(user=delegates["fr"], name="France's system", days=1)
    return plaintext


def client(plaintext: str, **extra) -> APIClient:
    c = APIClient(**extra)
    c.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return c


def answer(c: APIClient, path: str, query: str = "", **headers) -> tuple:
    r = c.get(f"{path}?{query}" if query else path, **headers)
    kept = {k: v for k, v in r.items() if k != "X-Request-ID"}
    return r.status_code, r.content, kept


def both_ways(plaintext: str, path: str, query: str, extra=None, **headers):
    """The answer the full way gives (without the lean middleware), then the lean one:
    (full, lean, how many the lean path answered)."""
    full_stack = [m for m in django_settings.MIDDLEWARE if m != LEAN]
    with override_settings(MIDDLEWARE=full_stack):
        full = answer(client(plaintext, **(extra or {})), path, query, **headers)
    c = client(plaintext, **(extra or {}))
    c.get(f"{path}?{query}", secure=headers.get("secure", False))  # decided, and kept
    before = lean_count()
    lean = answer(c, path, query, **headers)
    return full, lean, lean_count() - before


@pytest.mark.parametrize(
    ("path", "query"),
    [
        (INCLUSION, "index=0&tree_size=1"),
        (INCLUSION, "index=7&tree_size=40"),
        (INCLUSION, "tree_size=40&index=39"),
        (CONSISTENCY, "from=3&to=40"),
        (CONSISTENCY, "from=40&to=40"),
    ],
)
def test_the_lean_answer_is_the_full_ways_byte_for_byte(grown, france, path, query):
    full, lean, answered = both_ways(france, path, query)
    assert answered == 1
    assert full[0] == lean[0] == 200
    assert lean[1] == full[1] and lean[1].startswith(b'{"')
    assert lean[2] == full[2]
    for header in ("ETag", "Cache-Control", "Allow", "Content-Security-Policy", "Vary"):
        assert header in lean[2], header


def test_a_304_and_the_language_are_the_full_ways_too(grown, france):
    _, first, _ = both_ways(france, INCLUSION, "index=5&tree_size=40")
    tag = first[2]["ETag"]
    full, lean, answered = both_ways(
        france, INCLUSION, "index=5&tree_size=40", HTTP_IF_NONE_MATCH=tag
    )
    assert answered == 1 and full == lean and lean[0] == 304 and lean[1] == b""
    full, lean, answered = both_ways(
        france, INCLUSION, "index=5&tree_size=40", HTTP_ACCEPT_LANGUAGE="fr-FR,fr;q=0.9"
    )
    assert answered == 1 and full == lean and lean[2]["Content-Language"] == "fr"


def test_over_https_the_lean_answer_has_the_full_ways_hsts(grown, france, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 3600
    full, lean, answered = both_ways(france, CONSISTENCY, "from=1&to=40", secure=True)
    assert answered == 1 and full == lean
    assert lean[2]["Strict-Transport-Security"].startswith("max-age=3600")
    # Over plain HTTP the full way redirects, and so the lean path leaves it to it.
    full, lean, answered = both_ways(france, CONSISTENCY, "from=1&to=40")
    assert answered == 0 and full == lean and lean[0] == 301


@pytest.mark.parametrize(
    ("path", "query", "status"),
    [
        (INCLUSION, "index=007&tree_size=40", 200),  # a leading zero: the full way reads it
        (INCLUSION, "index=5&tree_size=40&pretty=1", 200),  # a parameter more
        (INCLUSION, "index=5&index=6&tree_size=40", 200),  # a parameter twice
        (INCLUSION, "index=40&tree_size=40", 400),
        (INCLUSION, "index=5&tree_size=999", 400),  # beyond the tree
        (INCLUSION, "index=-1&tree_size=40", 400),
        (INCLUSION, "index=%D9%A1&tree_size=40", 400),  # another script's digit
        (INCLUSION, "index=5&tree_size=9007199254740992", 400),  # past 2**53 - 1
        (INCLUSION, "index=5", 400),
        (CONSISTENCY, "from=0&to=40", 400),
        (CONSISTENCY, "from=9&to=8", 400),
        (CONSISTENCY, "from=1&to=999", 400),
    ],
)
def test_anything_unusual_goes_the_full_way_and_gets_its_answer(grown, france, path, query, status):
    full, lean, answered = both_ways(france, path, query)
    assert answered == 0
    assert full == lean and lean[0] == status


@pytest.mark.parametrize(
    ("accept", "answered", "status"),
    [
        ("*/*", 1, 200),
        ("application/json", 1, 200),
        ("text/html,application/xhtml+xml,*/*;q=0.8", 1, 200),
        ("Application/JSON; q=0.5", 1, 200),
        ("text/html", 0, 406),  # REST framework's content negotiation refuses it
        ("application/xml", 0, 406),
        ("", 0, 406),
        ("application/json; indent=4", 0, 200),  # the renderer would read the indent
    ],
)
def test_an_accept_header_the_full_way_reads_otherwise_goes_the_full_way(
    grown, france, accept, answered, status
):
    full, lean, counted = both_ways(france, INCLUSION, "index=5&tree_size=40", HTTP_ACCEPT=accept)
    assert counted == answered
    assert full == lean and lean[0] == status


def test_a_token_not_yet_decided_goes_the_full_way_then_the_lean_one(grown, france):
    c = client(france)
    before = lean_count()
    assert c.get(INCLUSION, {"index": 1, "tree_size": 40}).status_code == 200
    assert lean_count() == before
    assert c.get(INCLUSION, {"index": 2, "tree_size": 40}).status_code == 200
    assert lean_count() == before + 1
    # HEAD, and any other method, always goes the full way.
    assert c.head(INCLUSION, {"index": 2, "tree_size": 40}).status_code == 200
    assert c.post(INCLUSION, {"index": 2, "tree_size": 40}).status_code == 405
    assert lean_count() == before + 1


def test_nothing_is_kept_when_the_cache_is_off(grown, france, settings):
    settings.API_TOKEN_CACHE_SECONDS = 0
    c = client(france)
    before = lean_count()
    for index in range(3):
        assert c.get(INCLUSION, {"index": index, "tree_size": 40}).status_code == 200
    assert lean_count() == before


def test_a_token_without_a_seat_is_refused_every_time(grown, partner, settings):
    settings.LEDGER_READER_CHECK = "consortium.governance.selectors.holds_a_seat"
    _, _, plaintext = partner
    c = client(plaintext)
    before = lean_count()
    for _ in range(3):
        r = c.get(INCLUSION, {"index": 1, "tree_size": 40})
        assert r.status_code == 403 and r["Content-Type"] == "application/problem+json"
    assert lean_count() == before


def test_a_token_revoked_in_this_process_is_refused_at_once(grown, delegates):
    token, plaintext = ApiToken.issue(user=delegates["fr"], name="France's system", days=1)
    c = client(plaintext)
    assert c.get(INCLUSION, {"index": 1, "tree_size": 40}).status_code == 200
    assert c.get(INCLUSION, {"index": 2, "tree_size": 40}).status_code == 200
    token.revoke()
    r = c.get(INCLUSION, {"index": 3, "tree_size": 40})
    assert r.status_code == 401 and "revoked" in r.json()["detail"]


def test_an_address_throttled_for_guessing_is_refused_a_kept_token_too(grown, france, settings):
    settings.API_TOKEN_FAILURE_LIMIT = 3
    at = {"REMOTE_ADDR": "192.0.2.66"}
    c = client(france, **at)
    assert c.get(INCLUSION, {"index": 1, "tree_size": 40}).status_code == 200
    guesser = client("clt_000000000000_" + "x" * 30, **at)
    for _ in range(3):
        assert guesser.get(INCLUSION, {"index": 1, "tree_size": 40}).status_code == 401
    before = lean_count()
    r = c.get(INCLUSION, {"index": 2, "tree_size": 40})
    assert r.status_code == 429 and lean_count() == before


def test_a_request_for_a_host_not_allowed_is_the_full_ways_400(grown, france):
    full, lean, answered = both_ways(
        france, INCLUSION, "index=1&tree_size=40", HTTP_HOST="evil.example"
    )
    assert answered == 0 and lean[0] == full[0] == 400


def test_the_lean_answer_is_logged_and_counted_under_its_route(grown, france, caplog):
    c = client(france)
    c.get(INCLUSION, {"index": 1, "tree_size": 40})
    before = REGISTRY.get_sample_value(
        "consortium_http_requests_total",
        {"route": "api/v1/ledger/proofs/inclusion", "method": "GET", "status": "200"},
    )
    with caplog.at_level("INFO", logger="consortium.request"):
        r = c.get(INCLUSION, {"index": 2, "tree_size": 40})
    assert r.status_code == 200 and r["X-Request-ID"]
    after = REGISTRY.get_sample_value(
        "consortium_http_requests_total",
        {"route": "api/v1/ledger/proofs/inclusion", "method": "GET", "status": "200"},
    )
    assert after == (before or 0) + 1
    assert any("api/v1/ledger/proofs/inclusion 200" in m for m in caplog.messages)
