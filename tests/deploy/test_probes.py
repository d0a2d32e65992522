"""/healthz and /readyz in the application: answered before the host check and the HTTPS
redirect, the health probe without touching the database, the readiness probe naming
each check and the one that fails (its checks run on threads of their own, so these
tests commit what they set up)."""

from __future__ import annotations

import pytest
from django.core.files.storage import default_storage

from ledger import services
from ledger.services import publish_checkpoint
from tests.steps.ledger import triggers_disabled


@pytest.fixture
def production_like(settings):
    """The checks a probe must pass: HTTPS redirect on, only the site's name allowed."""
    settings.SECURE_SSL_REDIRECT = True
    settings.ALLOWED_HOSTS = ["ledger.consortium.example"]


def test_healthz_answers_a_probe_by_address_without_the_database(client, production_like):
    # No database fixture: any query would raise.
    r = client.get("/healthz", HTTP_HOST="10.1.2.3:8000")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    assert r["Cache-Control"] == "no-store" and len(r["X-Request-ID"]) == 32
    # Any other page still gets the host check and the redirect.
    assert client.get("/admin/", HTTP_HOST="10.1.2.3:8000").status_code == 400
    assert client.get("/admin/", HTTP_HOST="ledger.consortium.example").status_code == 301


def test_a_probe_is_read_only(client):
    r = client.post("/healthz")
    assert r.status_code == 405 and r["Allow"] == "GET, HEAD"


@pytest.fixture
def published(committed_db):
    """A log with a checkpoint, committed for the checks' threads to see."""
    services.ledger_init()
    publish_checkpoint()


def test_readyz_lists_every_check_and_passes(client, production_like, published):
    r = client.get("/readyz", HTTP_HOST="127.0.0.1:8000")
    body = r.json()
    assert r.status_code == 200, body
    assert body["status"] == "ok"
    assert list(body["checks"]) == ["database", "broker", "storage", "kek", "ledger"]
    assert all(c["ok"] for c in body["checks"].values())
    assert "unseals" in body["checks"]["kek"]["detail"]
    assert body["checks"]["ledger"]["detail"] == "1 entries; the checkpoint at 1 verifies"
    assert body["checks"]["broker"]["detail"] == "no broker: tasks run in this process"


def test_readyz_fails_naming_a_wrong_key_encryption_key(client, settings, published):
    settings.LEDGER_KEK = "11" * 32
    r = client.get("/readyz")
    body = r.json()
    assert r.status_code == 503 and body["status"] == "fail"
    assert body["checks"]["kek"]["ok"] is False
    assert "sealed under key-encryption key" in body["checks"]["kek"]["detail"]
    assert body["checks"]["database"]["ok"] and body["checks"]["ledger"]["ok"]


def test_readyz_fails_naming_a_checkpoint_the_log_did_not_sign(client, published):
    with triggers_disabled() as cur:
        cur.execute("UPDATE ledger_checkpoint SET note = REPLACE(note, '— ', '— x')")
    r = client.get("/readyz")
    body = r.json()
    assert r.status_code == 503
    assert body["checks"]["ledger"] == {
        "ok": False,
        "detail": "the checkpoint at size 1 is not signed by a log key",
    }


def test_readyz_fails_naming_storage_it_cannot_use(client, settings, committed_db, tmp_path):
    (tmp_path / "a-file").write_text("not a directory")
    settings.MEDIA_ROOT = str(tmp_path / "a-file" / "media")
    assert default_storage.location.endswith("a-file/media")
    body = client.get("/readyz").json()
    assert body["status"] == "fail"
    assert body["checks"]["storage"]["ok"] is False
    assert "Not a directory" in body["checks"]["storage"]["detail"]


@pytest.mark.parametrize(
    ("url", "ok", "detail"),
    [
        ("redis://127.0.0.1:6379/0", True, "redis answers PING"),
        ("amqp://guest:guest@127.0.0.1:5672//", True, "amqp port open"),
        ("amqp://guest:guest@127.0.0.1:1//", False, "the broker does not answer"),
    ],
)
def test_the_broker_check_asks_the_broker(settings, url, ok, detail):
    from consortium.web.health import CHECKS, _run

    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = url
    outcome = _run(CHECKS["broker"])
    assert outcome["ok"] is ok and outcome["detail"].startswith(detail), outcome


def test_readyz_tells_what_it_found_only_to_the_monitoring_networks(client, published):
    body = client.get("/readyz", REMOTE_ADDR="203.0.113.9").json()
    assert body["status"] == "ok"
    assert body["checks"] == {
        name: {"ok": True} for name in ("database", "broker", "storage", "kek", "ledger")
    }
