"""The lean path of downloads (consortium.leanreads): a range of an authorised download,
asked with a bearer token this process has just decided, is served before the rest of the
middleware, with the same bytes, headers and access-log line as the full way; a request
that would be refused, or that the lean path is not sure of, goes the full way, which
refuses it and keeps the refusal once.

Personas: Sweden's recorder fetching a checkpoint in ranges; Finland's recorder holding
Sweden's URL; a member suspended between two ranges."""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.test import override_settings
from prometheus_client import REGISTRY
from rest_framework.test import APIClient

from consortium.access import gate
from consortium.access.models import DownloadEvent
from consortium.governance.auth import recent_reads
from consortium.governance.models import ApiToken
from tests.steps.access import WEIGHTS, authorize
from tests.steps.governance import suspend_in_lumi

LEAN = "consortium.leanreads.LeanReadsMiddleware"
LOGGED = ("member", "username", "checkpoint", "path", "outcome", "reason", "token_id")


def lean_count() -> float:
    return REGISTRY.get_sample_value("consortium_lean_reads_total", {"route": "download"}) or 0.0


@pytest.fixture(autouse=True)
def kept(settings):
    """Bearer decisions kept for reads, as in production; nothing kept between tests."""
    settings.API_TOKEN_CACHE_SECONDS = 60
    recent_reads.clear()
    gate.kept.clear()
    cache.clear()
    yield
    recent_reads.clear()
    gate.kept.clear()
    cache.clear()


@pytest.fixture
def fetch(lumi, checkpoint):
    """Sweden's recorder's client (its own bearer token) and the URL of its download."""
    url = authorize(lumi, checkpoint.digest).json()["files"]["model.safetensors"]
    return token_of(lumi["people"]["rec_se"]), url


def token_of(user) -> str:
    return ApiToken.issue(user=user, days=1)[1]


def client(plaintext: str) -> APIClient:
    """A client with its own handler (the middleware it loads first, it keeps)."""
    c = APIClient()
    c.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return c


def answer(c: APIClient, url: str, **headers) -> tuple:
    """Status, body, headers (but the request id) and the access log's new line."""
    before = DownloadEvent.objects.count()
    r = c.get(url, **headers)
    body = b"".join(r.streaming_content) if r.streaming else r.content
    lines = list(DownloadEvent.objects.order_by("id").values(*LOGGED)[before:])
    return r.status_code, body, {k: v for k, v in r.items() if k != "X-Request-ID"}, lines


def both_ways(plaintext: str, url: str, **headers):
    """The full way's answer (without the lean middleware), then the lean one, with the
    same token: (full, lean, how many the lean path answered)."""
    full_stack = [m for m in django_settings.MIDDLEWARE if m != LEAN]
    with override_settings(MIDDLEWARE=full_stack):
        full = answer(client(plaintext), url, **headers)
    c = client(plaintext)
    c.get(url, secure=headers.get("secure", False))  # the token decided, and kept
    before = lean_count()
    lean = answer(c, url, **headers)
    return full, lean, lean_count() - before


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"HTTP_RANGE": "bytes=10-19"},
        {"HTTP_RANGE": "bytes=-5"},
        {"HTTP_ACCEPT": "*/*"},
        {"HTTP_ACCEPT": "application/json;q=0.9, text/plain"},
        {"HTTP_ACCEPT_LANGUAGE": "fr-FR,fr;q=0.9"},
    ],
)
def test_the_lean_answer_is_the_full_ways(fetch, headers):
    plaintext, url = fetch
    full, lean, answered = both_ways(plaintext, url, **headers)
    assert answered == 1
    assert full == lean
    status, body, sent, lines = lean
    first, last = {"bytes=10-19": (10, 19), "bytes=-5": (len(WEIGHTS) - 5, len(WEIGHTS) - 1)}.get(
        headers.get("HTTP_RANGE"), (0, len(WEIGHTS) - 1)
    )
    assert status == (206 if "HTTP_RANGE" in headers else 200)
    assert body == WEIGHTS[first : last + 1]
    for header in ("ETag", "Accept-Ranges", "Content-Disposition", "Allow", "Vary"):
        assert header in sent, header
    assert [line["outcome"] for line in lines] == ["served"]


def test_handed_to_nginx_the_answer_is_the_full_ways(fetch, settings):
    settings.DOWNLOADS_ACCEL_REDIRECT = "/_protected/checkpoints/"
    plaintext, url = fetch
    for headers in ({}, {"HTTP_RANGE": "bytes=0-99"}, {"HTTP_RANGE": "bytes=oops"}):
        full, lean, answered = both_ways(plaintext, url, **headers)
        assert answered == 1 and full == lean
        assert lean[0] == 200 and lean[1] == b""
        assert lean[2]["X-Accel-Redirect"].startswith("/_protected/checkpoints/")
    # A Range the application cannot read is nginx's to answer, noted in the line.
    assert "left to the web server" in lean[3][0]["reason"]


def test_over_https_the_lean_answer_has_the_full_ways_hsts(fetch, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 3600
    plaintext, url = fetch
    full, lean, answered = both_ways(plaintext, url, secure=True, HTTP_RANGE="bytes=0-9")
    assert answered == 1 and full == lean
    assert lean[2]["Strict-Transport-Security"].startswith("max-age=3600")
    # Over plain HTTP the full way redirects, and so the lean path leaves it to it.
    full, lean, answered = both_ways(plaintext, url)
    assert answered == 0 and full == lean and lean[0] == 301


@pytest.mark.parametrize(
    ("suffix", "headers", "status"),
    [
        ("", {"HTTP_RANGE": "bytes=5-2"}, 416),
        ("", {"HTTP_RANGE": "bytes=0-1,5-6"}, 416),
        ("", {"HTTP_ACCEPT": "text/html"}, 406),
        ("", {"HTTP_ACCEPT": "application/json; indent=4"}, 200),
        ("?x=1", {}, 200),
        ("/../other.bin", {}, 404),
    ],
)
def test_anything_unusual_goes_the_full_way_and_is_logged_once(fetch, suffix, headers, status):
    plaintext, url = fetch
    full, lean, answered = both_ways(plaintext, url + suffix, **headers)
    assert answered == 0
    assert full == lean and lean[0] == status
    # One line each way: a refusal is kept once, by the full way.
    assert len(full[3]) == len(lean[3]) == (0 if status == 406 else 1)


def test_another_members_recorder_is_refused_every_time(lumi, fetch):
    _, url = fetch
    finland = client(token_of(lumi["people"]["rec_fi"]))
    before = lean_count()
    for _ in range(3):
        status, _, _, lines = answer(finland, url)
        assert status == 403
        assert [line["outcome"] for line in lines] == ["denied"]
        assert "another member" in lines[0]["reason"]
    assert lean_count() == before


def test_a_suspension_between_two_ranges_refuses_the_next_one(lumi, fetch):
    plaintext, url = fetch
    c = client(plaintext)
    people = lumi["people"]
    assert answer(c, url, HTTP_RANGE="bytes=0-9")[0] == 206
    before = lean_count()
    assert answer(c, url, HTTP_RANGE="bytes=10-19")[0] == 206
    assert lean_count() == before + 1
    suspend_in_lumi(people, "SE")
    status, _, _, lines = answer(c, url, HTTP_RANGE="bytes=20-29")
    assert status == 403 and "not a member in good standing" in lines[0]["reason"]
    assert lean_count() == before + 1


def test_head_and_an_undecided_token_go_the_full_way(fetch):
    plaintext, url = fetch
    c = client(plaintext)
    before = lean_count()
    assert c.get(url).status_code == 200  # decided here
    assert lean_count() == before
    assert c.head(url).status_code == 200
    assert lean_count() == before
    assert c.get(url).status_code == 200
    assert lean_count() == before + 1
