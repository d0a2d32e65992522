"""Checkpoint publication through a real Celery worker on the real Redis broker.

A writer process configured with the broker appends; its commit queues the
debounced ``ledger.publish_checkpoint`` task; a separate worker process consumes it
and signs the checkpoint. Nothing is mocked (the fixtures ``broker`` and ``worker`` are
tests/conftest.py's).
"""

from __future__ import annotations

import time

import pytest
from django.db import connection

from consortium.celery import app
from ledger import checkpoints, services
from ledger.keys import log_signer
from ledger.models import Checkpoint
from tests.steps.ledger import start_writer

pytestmark = pytest.mark.slow


def test_the_beat_schedule_publishes_checkpoints_periodically():
    from ledger.tasks import publish_checkpoint

    entry = app.conf.beat_schedule["publish-checkpoint"]
    assert entry["task"] == publish_checkpoint.name
    assert entry["schedule"] == 60.0


def test_a_commit_queues_a_checkpoint_that_a_real_worker_publishes(worker):
    services.ledger_init()
    _, signer = services.key_register(
        signer=log_signer(), kind="service", owner="celery", name="celery"
    )
    # This process has no broker (it published size 2 in-process); the writer has one,
    # so only the worker can publish size 5.
    assert checkpoints.latest_checkpoint().tree_size == 2
    writer = start_writer("--key", signer.fingerprint, "--count", "3", env=worker)
    _, err = writer.communicate(timeout=60)
    assert writer.returncode == 0, err

    deadline = time.monotonic() + 45
    while time.monotonic() < deadline:
        connection.close()
        cp = Checkpoint.objects.order_by("-tree_size").first()
        if cp is not None and cp.tree_size == 5:
            break
        time.sleep(0.5)
    assert cp is not None and cp.tree_size == 5, "the worker did not publish the checkpoint"
