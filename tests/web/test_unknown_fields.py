"""Every write endpoint of the URLconf refuses a field it does not take: a 400 that names
it, and nothing written. A vote sent with ``"member": "NL"`` is not Poland's vote with
the field dropped; it is no vote at all."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.views import APIView

from consortium.access.models import DownloadEvent
from consortium.governance import proposals
from consortium.governance.models import Vote
from consortium.web.models import IdempotentResponse
from ledger.services import Entry
from tests.steps.api import api_as
from tests.steps.governance import propose

WRITE_METHODS = ("post", "put", "patch", "delete")
# Endpoints whose body is raw bytes (a document, a SLURM export): their fields are the
# query's, so the unknown field goes there.
RAW_BODIES = {"/api/v1/documents", "/api/v1/facilities/<code>/imports"}
SAMPLE = {
    "code": "FR",
    "fingerprint": "ab" * 32,
    "digest": "cd" * 32,
    "sha256": "ef" * 32,
    "token": "t" * 40,
    "path": "model.safetensors",
    "index": "1",
}


def _walk(patterns, prefix=""):
    for p in patterns:
        route = prefix + str(p.pattern)
        if isinstance(p, URLResolver):
            yield from _walk(p.url_patterns, route)
        elif isinstance(p, URLPattern):
            yield route, p.callback


def write_endpoints() -> list[tuple[str, str]]:
    """(route, method) of every API view that takes a write, as the URLconf has them."""
    found = []
    for route, callback in _walk(get_resolver().url_patterns):
        view = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
        if not route.startswith("api/") or view is None or not issubclass(view, APIView):
            continue
        # A viewset's route maps its methods to actions; a view answers its own methods.
        methods = getattr(callback, "actions", None) or {m: m for m in dir(view)}
        found += [("/" + route, m) for m in WRITE_METHODS if m in methods]
    return found


def _url(route: str) -> str:
    """The route with a value for each parameter (objects need not exist: the body is
    checked first)."""
    out = route
    while "<" in out:
        start, end = out.index("<"), out.index(">")
        conv, _, name = out[start + 1 : end].rpartition(":")
        value = str(uuid.uuid4()) if conv == "uuid" else SAMPLE[name]
        out = out[:start] + value + out[end + 1 :]
    return out


ENDPOINTS = write_endpoints()


def test_the_walk_finds_every_kind_of_write():
    routes = {r for r, _ in ENDPOINTS}
    assert len(ENDPOINTS) >= 24
    for expected in (
        "/api/v1/proposals/<uuid:pk>/votes",
        "/api/v1/ledger/entries",
        "/api/v1/audit/exports",
        "/api/v1/contributions/funds",
        "/api/v1/checkpoints/<str:digest>/downloads",
        *RAW_BODIES,
    ):
        assert expected.replace("<code>", "<str:code>") in routes


@pytest.mark.parametrize("who", ["fr", "ops"])
@pytest.mark.parametrize(("route", "method"), ENDPOINTS)
def test_a_field_the_endpoint_does_not_take_is_a_400_naming_it(delegates, who, route, method):
    api = api_as(delegates[who])
    before = (Entry.objects.count(), DownloadEvent.objects.count())
    url = _url(route)
    if route.replace("<str:code>", "<code>") in RAW_BODIES:
        r = getattr(api, method)(f"{url}?on_behalf_of=NL", b"bytes", content_type="text/plain")
    else:
        r = getattr(api, method)(
            url, {"on_behalf_of": "NL"}, format="json", HTTP_IDEMPOTENCY_KEY="walk"
        )
    assert r.status_code == 400, (route, r.status_code, r.content)
    assert r["Content-Type"] == "application/problem+json"
    assert "on_behalf_of: unknown field" in r.json()["detail"]
    assert (Entry.objects.count(), DownloadEvent.objects.count()) == before
    assert not IdempotentResponse.objects.exists()


def test_a_vote_naming_another_member_is_not_recorded_as_the_callers(delegates):
    p = proposals.proposal_open(
        actor=delegates["ops"],
        title="t",
        deadline=datetime.now(UTC) + timedelta(hours=1),
        actions=[{"type": "member.suspend", "code": "IT"}],
    )
    before = Entry.objects.count()
    r = api_as(delegates["fr"]).post(
        f"/api/v1/proposals/{p.id}/votes", {"choice": "yes", "member": "DE"}, format="json"
    )
    assert r.status_code == 400
    assert r.json()["errors"]["member"] == ["unknown field (this request takes choice)"]
    assert Entry.objects.count() == before and not Vote.objects.exists()


def test_several_unknown_fields_and_a_bad_one_are_named_together(delegates):
    r = api_as(delegates["fr"]).post(
        "/api/v1/seats",
        {"username": "x", "role": "king", "memebr": "FR", "as": "DE"},
        format="json",
    )
    assert r.status_code == 400
    assert set(r.json()["errors"]) == {"memebr", "as", "role"}


@pytest.mark.parametrize("reason", [0, 1.5, True, ["x"], {"x": 1}])
def test_a_text_field_takes_a_string_not_a_number_turned_into_one(delegates, reason):
    a = propose(delegates)
    before = Entry.objects.count()
    r = api_as(delegates["ops"]).post(
        f"/api/v1/agreements/{a.id}/termination", {"reason": reason}, format="json"
    )
    assert r.status_code == 400 and r.json()["errors"]["reason"]
    assert Entry.objects.count() == before
