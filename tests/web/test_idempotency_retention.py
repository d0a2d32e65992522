"""Answers kept for Idempotency-Key retries are forgotten after IDEMPOTENCY_KEEP_DAYS."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from consortium.celery import app
from consortium.web import idempotency
from consortium.web.models import IdempotentResponse
from tests.steps.api import api_as
from tests.steps.governance import open_proposal


def test_kept_answers_are_forgotten_after_the_retention_and_not_before(delegates, settings):
    settings.IDEMPOTENCY_KEEP_DAYS = 7
    p = open_proposal(delegates)
    api = api_as(delegates["fr"])
    url = f"/api/v1/proposals/{p.id}/votes"
    for key in ("old", "new"):
        assert (
            api.post(url, {"choice": "yes"}, format="json", HTTP_IDEMPOTENCY_KEY=key).status_code
            == 201
        )
    IdempotentResponse.objects.filter(key="old").update(
        created_at=timezone.now() - timedelta(days=8)
    )
    assert idempotency.prune() == 1
    assert list(IdempotentResponse.objects.values_list("key", flat=True)) == ["new"]
    # The kept one still answers its retry.
    again = api.post(url, {"choice": "yes"}, format="json", HTTP_IDEMPOTENCY_KEY="new")
    assert again.status_code == 201


def test_the_beat_schedule_forgets_them_every_hour():
    entry = app.conf.beat_schedule["prune-idempotent-responses"]
    assert entry["task"] == "consortium.prune_idempotent_responses"
    assert entry["schedule"] == 3600.0
