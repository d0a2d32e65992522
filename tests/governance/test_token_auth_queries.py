"""A bearer request costs one query to authenticate and decide who may read, however
many checks follow, and a read within API_TOKEN_CACHE_SECONDS of the last none; a token
revoked, or a seat vacated, in this process is refused on the very next request, in
another process on the next write at once and on reads within the cache's lifetime."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from consortium.governance.models import ApiToken
from consortium.governance.seats import seat_vacate

READER = "/api/v1/ledger/reader"


def _client(plaintext: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return client


def _queries(client: APIClient, path: str = READER):
    with CaptureQueriesContext(connection) as seen:
        response = client.get(path)
    return response, [q["sql"] for q in seen.captured_queries]


@pytest.fixture
def nothing_kept(settings):
    settings.API_TOKEN_CACHE_SECONDS = 0


def test_a_seat_holders_read_costs_one_query_once_its_use_is_recorded(delegates, nothing_kept):
    _, plaintext = ApiToken.issue(user=delegates["fr"], name="France's system", days=1)
    client = _client(plaintext)
    first, first_sql = _queries(client)
    # The first use is recorded (at most once a minute): one query more, an UPDATE.
    assert first.status_code == 204
    assert len(first_sql) == 2 and first_sql[1].startswith("UPDATE")
    again, sql = _queries(client)
    assert again.status_code == 204
    assert len(sql) == 1 and "seatholder" in sql[0]


def test_a_superusers_read_costs_one_query(db, nothing_kept):
    admin = get_user_model().objects.create_superuser("operator", password="unused-pass-123")
    _, plaintext = ApiToken.issue(user=admin, name="operations", days=1)
    client = _client(plaintext)
    client.get(READER)
    response, sql = _queries(client)
    assert response.status_code == 204 and len(sql) == 1


def test_a_user_without_a_seat_is_refused_in_one_query(partner, nothing_kept):
    _, _, plaintext = partner
    client = _client(plaintext)
    client.get(READER)
    response, sql = _queries(client)
    assert response.status_code == 403 and len(sql) == 1


def test_revocation_and_a_vacated_seat_take_effect_on_the_next_request(delegates):
    token, plaintext = ApiToken.issue(user=delegates["fr"], name="France's system", days=1)
    client = _client(plaintext)
    assert client.get(READER).status_code == 204
    seat_vacate(actor=get_user_model().objects.get(username="ops"), seat=token.seat, reason="left")
    refused = client.get(READER)
    assert refused.status_code == 401 and "no longer holds" in refused.json()["detail"]

    other, other_plaintext = ApiToken.issue(user=delegates["de"], name="Germany's", days=1)
    client = _client(other_plaintext)
    assert client.get(READER).status_code == 204
    other.revoke()
    refused = client.get(READER)
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]


def test_a_read_soon_after_the_last_costs_no_query(delegates, settings):
    settings.API_TOKEN_CACHE_SECONDS = 5
    _, plaintext = ApiToken.issue(user=delegates["fr"], name="France's system", days=1)
    client = _client(plaintext)
    assert client.get(READER).status_code == 204
    again, sql = _queries(client)
    assert again.status_code == 204 and sql == []


def test_a_token_revoked_elsewhere_reads_no_longer_than_the_cache_and_never_writes(
    delegates, settings
):
    settings.API_TOKEN_CACHE_SECONDS = 0.5
    token, plaintext = ApiToken.issue(user=delegates["fr"], name="France's system", days=1)
    client = _client(plaintext)
    assert client.get(READER).status_code == 204
    # Revoked by another process: a queryset update, which this process hears nothing of.
    ApiToken.objects.filter(pk=token.pk).update(revoked_at=datetime.now(UTC))
    assert client.get(READER).status_code == 204  # the decision kept for reads
    write = client.post("/api/v1/proposals", {}, format="json")
    assert write.status_code == 401 and "revoked" in write.json()["detail"]
    time.sleep(0.6)
    refused = client.get(READER)
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]
