"""/metrics: who may read it, what it counts (requests by URL pattern, never by path;
appends; downloads), the ledger's figures read at scrape time (a real witness's lag), and
the Celery queue's depth read from a real Redis."""

from __future__ import annotations

import pytest
import redis
from prometheus_client import REGISTRY, CollectorRegistry

from consortium.web.metrics import LedgerCollector, QueueCollector
from ledger.services import Draft, entries_append
from tests.steps.cosigning import Witnesses, grow

QUEUE_BROKER = "redis://127.0.0.1:6379/12"


def scraped(collector) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(collector)
    return registry


@pytest.mark.parametrize(
    ("address", "forwarded", "status"),
    [
        ("127.0.0.1", None, 200),
        ("::1", None, 200),
        ("203.0.113.9", None, 403),
        # Behind one proxy the client is the last address it appended.
        ("127.0.0.1", "198.51.100.7, 203.0.113.9", 403),
    ],
)
def test_metrics_are_for_the_allowed_networks(client, db, settings, address, forwarded, status):
    settings.TRUSTED_PROXY_COUNT = 1 if forwarded else 0
    extra = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded else {}
    r = client.get("/metrics", REMOTE_ADDR=address, **extra)
    assert r.status_code == status
    if status == 403:
        assert b"not from an allowed network" in r.content


def test_a_metrics_token_is_asked_for_when_set(client, db, settings):
    settings.METRICS_TOKEN = "scrape-secret-0123456789"
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    r = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret-0123456789")
    assert r.status_code == 200 and b"consortium_ledger_tree_size" in r.content


def test_requests_are_counted_by_url_pattern_never_by_path(client, log_key):
    route = "api/v1/downloads/<str:token>/<path:path>"
    labels = {"route": route, "method": "GET", "status": "401"}
    before = REGISTRY.get_sample_value("consortium_http_requests_total", labels) or 0
    refusals = {"reason_class": "holder"}
    refused = REGISTRY.get_sample_value("consortium_download_refusals_total", refusals) or 0
    assert client.get("/api/v1/downloads/not-a-token-abc/weights.bin").status_code == 401
    assert REGISTRY.get_sample_value("consortium_http_requests_total", labels) == before + 1
    assert REGISTRY.get_sample_value("consortium_download_refusals_total", refusals) == refused + 1
    text = client.get("/metrics").content.decode()
    assert "not-a-token-abc" not in text and f'route="{route}"' in text


def test_appends_are_timed(sample_signer):
    before = REGISTRY.get_sample_value("consortium_ledger_append_seconds_count") or 0
    entries_append(signer=sample_signer, drafts=[Draft("test.sample", {"n": 1})])
    assert REGISTRY.get_sample_value("consortium_ledger_append_seconds_count") == before + 1


@pytest.fixture
def witnesses(tmp_path):
    ws = Witnesses(tmp_path)
    yield ws
    ws.close()


def test_the_ledgers_figures_and_a_witness_lag(delegates, witnesses):
    witness = witnesses.start("FR", register=delegates)
    cosigned = grow(3)
    figures = scraped(LedgerCollector())
    lag = {"witness": witness["name"]}
    assert figures.get_sample_value("consortium_witness_cosignature_lag", lag) == 0
    witnesses.stop("fr")
    latest = grow(2)
    figures = scraped(LedgerCollector())
    assert figures.get_sample_value("consortium_ledger_tree_size") == latest.tree_size
    assert figures.get_sample_value("consortium_ledger_checkpoint_size") == latest.tree_size
    assert 0 <= figures.get_sample_value("consortium_ledger_checkpoint_age_seconds") < 60
    assert figures.get_sample_value("consortium_witness_cosignature_lag", lag) == (
        latest.tree_size - cosigned.tree_size
    )
    assert figures.get_sample_value("consortium_witness_alarms", lag) == 0
    assert figures.get_sample_value("consortium_ledger_readable") == 1


@pytest.fixture
def queue(settings):
    client = redis.Redis.from_url(QUEUE_BROKER)
    try:
        client.ping()
    except redis.ConnectionError as exc:
        pytest.fail(f"needs Redis at {QUEUE_BROKER}: {exc}")
    name = "consortium-metrics-test"
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = QUEUE_BROKER
    settings.CELERY_TASK_DEFAULT_QUEUE = name
    keys = [name, f"{name}\x06\x163"]
    client.delete(*keys)
    yield client, name
    client.delete(*keys)
    client.close()


def test_the_celery_queue_depth_is_read_from_redis(queue):
    client, name = queue
    figures = scraped(QueueCollector())
    assert figures.get_sample_value("consortium_celery_queue_depth", {"queue": name}) == 0
    client.rpush(name, "a", "b", "c")
    client.rpush(f"{name}\x06\x163", "d")  # a message of priority 3
    figures = scraped(QueueCollector())
    assert figures.get_sample_value("consortium_celery_queue_depth", {"queue": name}) == 4
    assert figures.get_sample_value("consortium_celery_broker_up") == 1


def test_a_broker_that_does_not_answer_is_a_zero_not_an_error(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    figures = scraped(QueueCollector())
    assert figures.get_sample_value("consortium_celery_broker_up") == 0


def test_no_broker_no_queue(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    assert list(QueueCollector().collect()) == []


def test_the_celery_queue_depth_is_read_from_rabbitmq(settings):
    """A passive declare on a real RabbitMQ (the broker's other kind)."""
    from kombu import Connection, Exchange, Queue

    url = "amqp://guest:guest@127.0.0.1:5672//"
    name = "consortium-metrics-test"
    try:
        with Connection(url, connect_timeout=3) as conn:
            conn.connect()
            queue = Queue(name, Exchange(name, type="direct"), routing_key=name)
            queue(conn.channel()).declare()
            queue(conn.channel()).purge()
            producer = conn.Producer()
            for n in range(5):
                producer.publish({"n": n}, exchange=queue.exchange, routing_key=name)
    except OSError as exc:
        pytest.fail(f"needs RabbitMQ at {url}: {exc}")
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = url
    settings.CELERY_TASK_DEFAULT_QUEUE = name
    try:
        figures = scraped(QueueCollector())
        assert figures.get_sample_value("consortium_celery_queue_depth", {"queue": name}) == 5
    finally:
        with Connection(url, connect_timeout=3) as conn:
            queue(conn.channel()).delete()
