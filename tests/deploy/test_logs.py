"""JSON log lines: their fields, the request id taken from the proxy only when it is a
plain token, the request line with its URL pattern, and secrets blanked from messages.
(tests/deploy/test_nginx_gunicorn.py reads the logs of a real gunicorn for secrets.)"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time

import pytest
import redis

from consortium.web.logging import JsonFormatter, redact, request_id, sane_request_id


def _record(message: str, *args, **extra) -> logging.LogRecord:
    record = logging.LogRecord("consortium.test", logging.WARNING, __file__, 1, message, args, None)
    record.__dict__.update(extra)
    return record


def test_a_json_line_has_the_fields_and_the_request_id():
    token = request_id.set("0123456789abcdef")
    try:
        line = json.loads(JsonFormatter().format(_record("checkpoint at %d", 5)))
    finally:
        request_id.reset(token)
    assert line["message"] == "checkpoint at 5" and line["level"] == "WARNING"
    assert line["logger"] == "consortium.test" and line["request_id"] == "0123456789abcdef"
    assert line["time"].endswith("+00:00")


def test_a_json_line_holds_only_its_own_fields():
    record = _record("GET x 200", method="GET", route="x", status=200, duration_ms=1.5)
    record.request = object()  # what django.request attaches: never written
    record.headers = {"Authorization": "Bearer abc"}
    line = json.loads(JsonFormatter().format(record))
    assert set(line) == {
        "time",
        "level",
        "logger",
        "message",
        "request_id",
        "method",
        "route",
        "status",
        "duration_ms",
    }


def test_an_exception_is_one_line_too():
    try:
        raise ValueError("password=hunter2 refused")
    except ValueError:
        record = _record("failed")
        record.exc_info = sys.exc_info()
    text = JsonFormatter().format(record)
    assert "\n" not in text and "hunter2" not in text
    assert "ValueError" in json.loads(text)["exception"]


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("Authorization: Bearer clt_abc.def", "Authorization: [redacted]"),
        ("login with password=s3cret&next=/", "login with password=[redacted]&next=/"),
        ("sent Bearer clt_0123456789abcdef", "sent Bearer [redacted]"),
        ("token: abcdef", "token: [redacted]"),
        ("sessionid=abc123; csrftoken=xyz", "sessionid=[redacted]; csrftoken=[redacted]"),
        ("the download token has expired", "the download token has expired"),
        (
            "Internal Server Error: /api/v1/downloads/eyJ.abc/model.bin",
            "Internal Server Error: /api/v1/downloads/<token>/model.bin",
        ),
    ],
)
def test_secrets_in_a_message_are_blanked(text, kept):
    assert redact(text) == kept


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("a3f9c1d2e4b5a6c7d8e9f0a1b2c3d4e5", True),
        ("req-2026-12-05:01", True),
        ("short", False),
        ("two\nlines-injected", False),
        ('"quoted"-value-here', False),
        ("x" * 129, False),
        (None, False),
    ],
)
def test_the_proxys_request_id_is_taken_only_when_plain(given, kept):
    rid = sane_request_id(given)
    assert (rid == given) is kept
    assert 8 <= len(rid) <= 128


def test_a_request_is_answered_with_its_id_and_logged_by_its_pattern(client, db, caplog):
    with caplog.at_level(logging.INFO, logger="consortium.request"):
        r = client.get("/api/v1/ledger/entries/7", HTTP_X_REQUEST_ID="edge-0000000042")
    assert r["X-Request-ID"] == "edge-0000000042"
    (line,) = [rec for rec in caplog.records if rec.name == "consortium.request"]
    assert line.route == "api/v1/ledger/entries/<int:index>" and line.status == r.status_code
    assert json.loads(JsonFormatter().format(line))["route"] == line.route
    r = client.get("/api/v1/ledger/entries/7", HTTP_X_REQUEST_ID="bad id with spaces")
    assert r["X-Request-ID"] != "bad id with spaces" and len(r["X-Request-ID"]) == 32


def test_the_celery_worker_logs_json_lines_too(tmp_path):
    """Celery leaves the root logger to LOGGING: a worker that cannot reach its broker
    says so as a JSON line."""
    from tests.steps.ledger import ROOT, child_env
    from tests.steps.nginx import free_port

    out = tmp_path / "worker.log"
    env = {
        **child_env(),
        "LOG_FORMAT": "json",
        "CELERY_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0",  # nothing listens
    }
    command = [sys.executable, "-m", "celery", "-A", "consortium", "worker", "--pool=solo"]
    command += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
    with out.open("w") as stream:
        worker = subprocess.Popen(command, cwd=ROOT, env=env, stdout=stream, stderr=stream)
        try:
            deadline = time.monotonic() + 60
            while "Cannot connect" not in out.read_text() and time.monotonic() < deadline:
                time.sleep(0.2)
        finally:
            worker.terminate()
            worker.wait(timeout=30)
    lines = [line for line in out.read_text().splitlines() if "Cannot connect" in line]
    assert lines, out.read_text()[-2000:]
    line = json.loads(lines[0])
    assert line["level"] == "ERROR" and line["logger"].startswith("celery.worker")


def test_a_task_queued_during_a_request_logs_under_its_id(tmp_path):
    """A real worker: the task, sent while a request id is set, fails (wrong arguments),
    and the worker's line about it carries that id."""
    from celery import Celery

    from tests.steps.ledger import ROOT, child_env

    broker = "redis://127.0.0.1:6379/11"
    try:
        redis.Redis.from_url(broker).ping()
    except redis.ConnectionError as exc:
        pytest.fail(f"needs Redis at {broker}: {exc}")
    queue = f"consortium-logs-test-{os.getpid()}"
    out = tmp_path / "worker.log"
    env = {**child_env(), "LOG_FORMAT": "json", "CELERY_BROKER_URL": broker}
    command = [sys.executable, "-m", "celery", "-A", "consortium", "worker", "--pool=solo"]
    command += ["--without-gossip", "--without-mingle", "--without-heartbeat", "-Q", queue]
    token = request_id.set("req-for-the-task-0042")
    try:
        Celery(broker=broker, set_as_current=False).send_task(
            "ledger.publish_checkpoint", args=[1, 2, 3], queue=queue
        )
    finally:
        request_id.reset(token)
    with out.open("w") as stream:
        worker = subprocess.Popen(command, cwd=ROOT, env=env, stdout=stream, stderr=stream)
        try:
            deadline = time.monotonic() + 60
            while "req-for-the-task-0042" not in out.read_text() and time.monotonic() < deadline:
                time.sleep(0.2)
        finally:
            worker.terminate()
            worker.wait(timeout=30)
            redis.Redis.from_url(broker).delete(queue)
    lines = [json.loads(t) for t in out.read_text().splitlines() if "req-for-the-task" in t]
    assert lines, out.read_text()[-2000:]
    assert lines[0]["request_id"] == "req-for-the-task-0042" and lines[0]["level"] == "ERROR"
    assert "ledger.publish_checkpoint" in lines[0]["message"]
