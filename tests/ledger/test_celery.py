"""Checkpoint publication through a real Celery worker on the real Redis broker.

A writer process configured with the broker appends; its commit queues the
debounced ``ledger.publish_checkpoint`` task; a separate worker process consumes it
and signs the checkpoint. Nothing is mocked.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import redis
from django.db import connection

from consortium.celery import app
from ledger import checkpoints, services
from ledger.keys import log_signer
from ledger.models import Checkpoint
from tests.ledger.helpers import ROOT, child_env, start_writer

BROKER = os.environ.get("CELERY_TEST_BROKER_URL", "redis://127.0.0.1:6379/15")

pytestmark = pytest.mark.slow


@pytest.fixture
def broker():
    client = redis.Redis.from_url(BROKER)
    try:
        client.ping()
    except redis.ConnectionError as exc:
        reason = (
            f"needs Redis at {BROKER} for a real Celery worker ({exc}); start one, or run "
            f"with CELERY_TEST_BROKER_URL=redis://host:6379/15"
        )
        # CI starts Redis itself: there a missing broker is a failure, never a skip.
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(reason)
        pytest.skip(reason)
    client.flushdb()
    yield BROKER
    client.flushdb()


@pytest.fixture
def worker(broker, committed_db):
    env = {**child_env(), "CELERY_BROKER_URL": broker, "LEDGER_CHECKPOINT_DEBOUNCE": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "consortium",
            "worker",
            "--pool=solo",
            "--loglevel=WARNING",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    yield env
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


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
