"""A partner system's subscription, and every attempt to deliver to it (the delivery log).

Subscriptions are configuration of this server's deliveries, not facts of the
consortium: they are rows, not ledger entries (docs/events.md says why)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class WebhookSubscription(models.Model):
    class State(models.TextChoices):
        ACTIVE = "active"
        # Paused after WEBHOOK_MAX_ATTEMPTS failed attempts in a row; resumed by its owner.
        FAILING = "failing"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # The member whose seat holder subscribed (None: a consortium-wide seat's).
    owner = models.ForeignKey(
        "consortium.Member", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    url = models.CharField(max_length=2000)
    # The entries list's filters: kinds (any of them; none: every kind) and member.
    kinds = models.JSONField(default=list, blank=True)
    member = models.CharField(max_length=64, blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.ACTIVE)
    # The index of the last entry delivered (a 2xx answer), or the index it started after.
    cursor = models.BigIntegerField()
    failures = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # A worker's claim while it delivers (one at a time per subscription, in order).
    leased_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "id"]

    def __str__(self) -> str:
        return f"webhook {self.id} to {self.url}"


class WebhookDelivery(models.Model):
    """One attempt to deliver one entry (an event) to one subscription."""

    subscription = models.ForeignKey(
        WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries"
    )
    index = models.BigIntegerField()
    event_id = models.CharField(max_length=200)
    attempt = models.PositiveIntegerField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True, default="")
    duration_ms = models.PositiveIntegerField()
    attempted_at = models.DateTimeField()
    delivered = models.BooleanField()
    next_attempt_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["subscription", "index"])]

    def __str__(self) -> str:
        return f"{self.event_id} attempt {self.attempt}"
