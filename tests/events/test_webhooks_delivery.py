"""Webhooks delivered by real processes: a Celery worker and beat on the real Redis broker
(tests/conftest.py's ``broker``), a writer process appending, and a partner's receiver
(tests/events/receiver.py) that verifies every signature. Events arrive in index order; a
500 is retried with the same webhook-id; nothing is lost while the receiver is down or
when the worker is killed mid-way (a duplicate, if any, carries the same id); every
attempt is in the delivery log; the docs' verification example verifies real deliveries."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from django.db import connection
from nacl.exceptions import BadSignatureError

from consortium.webhooks.models import WebhookDelivery, WebhookSubscription
from ledger import services
from ledger.keys import log_signer
from ledger.models import Entry, Key
from tests.events.servers import WORKER, Celery, Receiver
from tests.personas import found_delegates
from tests.steps.api import api_as
from tests.steps.ledger import child_env, start_writer

pytestmark = pytest.mark.slow

DOCS = Path(__file__).resolve().parents[2] / "docs" / "events.md"


def _until(what: str, check, seconds: float = 60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        connection.close()
        found = check()
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def _write(env: dict, key: str, count: int) -> list[int]:
    writer = start_writer("--key", key, "--count", str(count), "--tag", "hook", env=env)
    out, err = writer.communicate(timeout=60)
    assert writer.returncode == 0, err
    return [int(line) for line in out.split()]


def _docs_verify():
    """The verification example of docs/events.md, as printed there."""
    code = re.search(r"<!-- verify-example -->\n```python\n(.*?)```", DOCS.read_text(), re.S)
    assert code, "docs/events.md has no verification example"
    scope: dict = {}
    exec(compile(code.group(1), str(DOCS), "exec"), scope)  # noqa: S102 (our own docs)
    return scope["verify"]


@pytest.fixture
def tuned(monkeypatch, settings):
    """Retries, claims and the sweep in seconds rather than minutes; http to 127.0.0.1."""
    tuning = {
        "WEBHOOK_ALLOW_HTTP": "1",
        "WEBHOOK_RETRY_SECONDS": "0.5",
        "WEBHOOK_RETRY_MAX_SECONDS": "1",
        "WEBHOOK_MAX_ATTEMPTS": "1000",
        "WEBHOOK_LEASE_SECONDS": "3",
        "WEBHOOK_TIMEOUT": "2",
        "WEBHOOK_SWEEP_SECONDS": "1",
        "LEDGER_CHECKPOINT_SCHEDULE": "3600",
        "LEDGER_PUBLISH_ON_APPEND": "0",
    }
    for name, value in tuning.items():
        monkeypatch.setenv(name, value)
    settings.WEBHOOK_ALLOW_HTTP = True


def test_deliveries_in_order_retried_and_never_lost_across_restarts(
    tuned, broker, committed_db, tmp_path
):
    delegates = found_delegates()
    receiver = Receiver(tmp_path, log_signer().public_key).start()
    (tmp_path / "fail").write_text("1")  # the first request is answered 500
    made = api_as(delegates["fr"]).post(
        "/api/v1/webhooks", {"url": receiver.url, "kinds": ["test.sample"]}, format="json"
    )
    assert made.status_code == 201, made.content
    sub = WebhookSubscription.objects.get(pk=made.json()["id"])
    env = {**child_env(), "CELERY_BROKER_URL": broker}
    worker = Celery(env, *WORKER).start()
    beat = Celery(env, "beat", "-s", str(tmp_path / "beat-schedule"), "--loglevel=WARNING")
    beat.start()
    key = Key.objects.get(kind="service", owner="secretariat").fingerprint
    try:
        # 1. In order; the 500 retried under the same id, then delivered.
        first = _write(env, key, 3)
        _until("three deliveries", lambda: len(receiver.delivered()) >= 3)
        got = receiver.received()
        assert got[0]["status"] == 500 and got[1]["id"] == got[0]["id"] == f"entry_{first[0]}"
        assert [r["id"] for r in receiver.delivered()] == [f"entry_{i}" for i in first]
        assert all(r["verified"] for r in got)
        log = list(WebhookDelivery.objects.filter(subscription=sub, index=first[0]))
        assert [(d.attempt, d.status_code, d.delivered) for d in log] == [
            (1, 500, False),
            (2, 200, True),
        ]
        assert log[0].next_attempt_at is not None and log[0].error == "answered 500"

        # 2. The receiver is down for a while: attempts fail, nothing is lost.
        receiver.stop()
        down = _write(env, key, 3)
        _until(
            "failed attempts",
            lambda: WebhookDelivery.objects.filter(subscription=sub, status_code=None).count() >= 2,
        )
        receiver.start()
        _until("the missed entries", lambda: len(receiver.delivered()) >= 6)

        # 3. The worker is killed mid-way through a run and another takes over.
        (tmp_path / "delay").write_text("0.3")
        burst = _write(env, key, 12)
        _until("some of the burst", lambda: len(receiver.delivered()) >= 9)
        worker.stop(kill=True)
        worker = Celery(env, *WORKER).start()
        (tmp_path / "delay").unlink()
        expected = first + down + burst
        ids = [f"entry_{i}" for i in expected]
        _until("every entry", lambda: set(ids) <= {r["id"] for r in receiver.delivered()}, 90)
    finally:
        worker.stop()
        beat.stop()
        receiver.stop()

    # A receiver that drops the ids it has seen sees each index once, in index order.
    seen: list[str] = []
    for r in receiver.delivered():
        if r["id"] not in seen:
            seen.append(r["id"])
    assert seen == ids
    bodies = {r["id"]: json.loads(r["body"]) for r in receiver.delivered()}
    event = bodies[ids[0]]
    entry = Entry.objects.get(index=expected[0])
    assert event["specversion"] == "1.0" and event["type"] == "org.consortium.ledger.test.sample"
    assert event["id"] == f"{services.log_origin()}/{entry.index}"
    assert event["data"]["index"] == entry.index and event["data"]["leaf"] == entry.leaf_b64
    # Every attempt is in the delivery log; the cursor is at the last entry delivered.
    rows = WebhookDelivery.objects.filter(subscription=sub)
    answered = receiver.received()
    assert rows.filter(status_code=500).count() == sum(r["status"] == 500 for r in answered)
    assert rows.filter(status_code=None).count() >= 2  # while the receiver was down
    for index in expected:
        numbers = list(rows.filter(index=index).values_list("attempt", flat=True))
        assert numbers == list(range(1, len(numbers) + 1))
    assert set(rows.filter(delivered=True).values_list("index", flat=True)) == set(expected)
    sub.refresh_from_db()
    assert sub.cursor == expected[-1] and sub.failures == 0

    # The docs' example verifies real deliveries, and refuses a body changed by one byte.
    verify = _docs_verify()
    public_key = log_signer().public_key
    for r in receiver.delivered()[:5]:
        assert verify(r["headers"], r["body"].encode(), public_key)["subject"] == (
            "entries/" + r["id"].removeprefix("entry_")
        )
    r = receiver.delivered()[0]
    with pytest.raises(BadSignatureError):
        verify(r["headers"], r["body"].replace("1.0", "1.1").encode(), public_key)
