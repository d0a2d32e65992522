"""Prometheus metrics at ``/metrics``, for the addresses METRICS_ALLOWED_NETWORKS lists
(and with METRICS_TOKEN, that bearer token too).

Counters and histograms are kept by each process; under gunicorn, where several workers
answer, in PROMETHEUS_MULTIPROC_DIR (deploy/gunicorn.conf.py sets it up), which a scrape
adds up. The ledger's figures are read from the database at scrape time, a handful of
indexed queries, and the Celery queues' depth from the broker: gauges no process has to
keep up to date.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import time

from django.conf import settings
from django.http import HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily

from consortium.web.clientip import client_address

log = logging.getLogger(__name__)

HTTP_REQUESTS = Counter(
    "consortium_http_requests",
    "Requests answered, by URL pattern, method and status.",
    ["route", "method", "status"],
)
HTTP_SECONDS = Histogram(
    "consortium_http_request_duration_seconds",
    "Time to answer a request, by URL pattern and method.",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
DOWNLOAD_BYTES = Counter(
    "consortium_download_bytes", "Bytes of checkpoint files handed out (as the access log says)."
)
DOWNLOAD_REFUSALS = Counter(
    "consortium_download_refusals",
    "Download requests refused, by kind of reason.",
    ["reason_class"],
)
LEAN_READS = Counter(
    "consortium_lean_reads",
    "Proof and download requests answered by the lean path (consortium.leanreads), without "
    "REST framework, by route.",
    ["route"],
)
# The methods a client may send are many; any other is counted as one label.
_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


def request_observed(route: str, method: str, status: int, seconds: float) -> None:
    method = method if method in _METHODS else "other"
    HTTP_REQUESTS.labels(route, method, str(status)).inc()
    HTTP_SECONDS.labels(route, method).observe(seconds)


def reason_class(reason: str) -> str:
    """A refusal's reason, in a handful of classes (a label per sentence would be many)."""
    text = reason.lower()
    for cls, words in (
        ("range", ("range",)),
        ("token", ("token",)),
        ("holder", ("seat", "credentials", "authenticat", "holder", "signed in")),
        ("file", ("not a file", "no such checkpoint", "covers")),
    ):
        if any(w in text for w in words):
            return cls
    return "entitlement"


def download_recorded(*, outcome: str, reason: str, size: int) -> None:
    """A line of the access log (consortium.access.downloads.record), counted."""
    if outcome == "served":
        DOWNLOAD_BYTES.inc(size)
    else:
        DOWNLOAD_REFUSALS.labels(reason_class(reason)).inc()


# --- figures read at scrape time ----------------------------------------------------------------


class LedgerCollector:
    """Tree size, the latest checkpoint's size and age, each active witness's lag behind
    it, and the witness alarms, from the database."""

    def collect(self):
        try:
            figures = list(self.figures())
        except Exception as exc:
            # A scrape still answers (the process's own figures) when the database does not.
            log.warning("metrics: cannot read the ledger's figures: %s", type(exc).__name__)
            figures = []
        yield from figures
        yield GaugeMetricFamily(
            "consortium_ledger_readable",
            "1 if the database answered this scrape's questions.",
            value=1 if figures else 0,
        )

    def figures(self):
        from ledger import services as ledger

        size = ledger.tree_size()
        yield GaugeMetricFamily("consortium_ledger_tree_size", "Entries in the log.", value=size)
        latest = ledger.latest_checkpoint()
        checkpoint_size = latest.tree_size if latest else 0
        yield GaugeMetricFamily(
            "consortium_ledger_checkpoint_size",
            "Tree size of the latest checkpoint.",
            value=checkpoint_size,
        )
        if latest is not None:
            yield GaugeMetricFamily(
                "consortium_ledger_checkpoint_age_seconds",
                "Seconds since the latest checkpoint was published.",
                value=max(0.0, time.time() - latest.published_at.timestamp()),
            )
        names = list(
            ledger.Witness.objects.filter(retired_in__isnull=True).values_list("name", flat=True)
        )
        status = ledger.witness_status(names)
        lag = GaugeMetricFamily(
            "consortium_witness_cosignature_lag",
            "Entries between the latest checkpoint and the largest one each active witness "
            "cosigned (all of it if it never cosigned).",
            labels=["witness"],
        )
        alarms = GaugeMetricFamily(
            "consortium_witness_alarms",
            "Alarms raised over each active witness (a refusal, or a witness ahead of the log).",
            labels=["witness"],
        )
        for name in names:
            cosigned = status[name]["cosigned_size"] or 0
            lag.add_metric([name], max(0, checkpoint_size - cosigned))
            alarms.add_metric([name], status[name]["alarms"])
        yield lag
        yield alarms
        yield GaugeMetricFamily(
            "consortium_witness_alarms_all",
            "Witness alarms ever raised, retired witnesses' included.",
            value=ledger.witness_alarm_count(),
        )


def queue_names() -> list[str]:
    return [getattr(settings, "CELERY_TASK_DEFAULT_QUEUE", "celery")]


def queue_depths(url: str, queues: list[str], timeout: float = 2.0) -> dict[str, int]:
    """Messages waiting in each queue: LLEN on Redis (with its priority lists), a passive
    declare on RabbitMQ."""
    if url.startswith(("redis://", "rediss://")):
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
        try:
            # Kombu keeps a queue's messages of priority p > 0 in "<queue>\x06\x16<p>".
            return {
                q: sum(client.llen(k) for k in (q, *(f"{q}\x06\x16{p}" for p in (3, 6, 9))))
                for q in queues
            }
        finally:
            client.close()
    from kombu import Connection

    with Connection(url, connect_timeout=timeout) as conn:
        channel = conn.channel()
        return {q: channel.queue_declare(q, passive=True).message_count for q in queues}


class QueueCollector:
    """Celery's queue depth, when there is a broker (without one, tasks run in-process)."""

    def collect(self):
        if settings.CELERY_TASK_ALWAYS_EAGER:
            return
        depth = GaugeMetricFamily(
            "consortium_celery_queue_depth", "Tasks waiting in each Celery queue.", labels=["queue"]
        )
        up = 1
        try:
            for queue, n in queue_depths(settings.CELERY_BROKER_URL, queue_names()).items():
                depth.add_metric([queue], n)
        except Exception as exc:
            up = 0
            log.warning("metrics: cannot read the queues' depth: %s", type(exc).__name__)
        yield depth
        yield GaugeMetricFamily(
            "consortium_celery_broker_up", "1 if the broker answered this scrape.", value=up
        )


def exposition() -> bytes:
    """Every metric, in Prometheus's text format."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        kept = CollectorRegistry()
        multiprocess.MultiProcessCollector(kept)
    else:
        kept = REGISTRY
    scraped = CollectorRegistry()
    scraped.register(LedgerCollector())
    scraped.register(QueueCollector())
    return generate_latest(kept) + generate_latest(scraped)


# --- who may read them ------------------------------------------------------------------------------


def allowed(request) -> str | None:
    """None if ``request`` may read the metrics, else why not."""
    address = client_address(request) or ""
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return "metrics: no client address"
    if not any(ip in net for net in settings.METRICS_ALLOWED_NETWORKS):
        return "metrics: not from an allowed network (METRICS_ALLOWED_NETWORKS)"
    token = settings.METRICS_TOKEN
    if token:
        given = request.META.get("HTTP_AUTHORIZATION", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return "metrics: a bearer token is required (METRICS_TOKEN)"
    return None


def metrics_view(request) -> HttpResponse:
    refusal = allowed(request)
    if refusal:
        return HttpResponse(refusal + "\n", status=403, content_type="text/plain; charset=utf-8")
    response = HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)
    response["Cache-Control"] = "no-store"
    return response
