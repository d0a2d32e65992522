"""``/healthz`` (the process answers) and ``/readyz`` (what it needs is reachable), for
probes: systemd, Docker's HEALTHCHECK, a load balancer or Kubernetes.

Both, and ``/metrics``, are answered by ProbeMiddleware before the rest of the middleware:
no session, no CSRF, no redirect to HTTPS and no ALLOWED_HOSTS check, since a probe
calls the process by its address (``http://127.0.0.1:8000/healthz``, a pod's IP), not by
the site's name. Nothing here sends mail or asks DNS for anything but the names the
settings give.

``/readyz`` runs its checks side by side, each within READYZ_TIMEOUT seconds, and answers
200 or 503 with ``{"status": "ok"|"fail", "checks": {name: {"ok", "detail"}}}``; the
details only to those who may read the metrics.
"""

from __future__ import annotations

import os
import socket
import time
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connection
from django.http import JsonResponse

PROBES = {"/healthz": "healthz", "/readyz": "readyz", "/metrics": "metrics"}


class CheckFailed(Exception):
    """A readiness check that did not pass; its message says why."""


def check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return f"{connection.vendor} answers"


def check_broker() -> str:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return "no broker: tasks run in this process"
    url = settings.CELERY_BROKER_URL
    timeout = settings.READYZ_TIMEOUT
    if url.startswith(("redis://", "rediss://")):
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
        try:
            client.ping()
        except redis.RedisError as exc:
            raise CheckFailed(f"the broker does not answer: {type(exc).__name__}") from exc
        finally:
            client.close()
        return "redis answers PING"
    parts = urlsplit(url)
    port = parts.port or {"amqp": 5672, "amqps": 5671}.get(parts.scheme)
    if not parts.hostname or not port:
        raise CheckFailed(f"cannot tell the broker's address from its {parts.scheme}: URL")
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            pass
    except OSError as exc:
        raise CheckFailed(f"the broker does not answer: {type(exc).__name__}") from exc
    return f"{parts.scheme} port open"


def check_storage() -> str:
    from django.core.files.storage import default_storage

    bucket = getattr(default_storage, "bucket_name", None)
    if bucket:
        client = default_storage.connection.meta.client
        try:
            client.head_bucket(Bucket=bucket)
        except Exception as exc:
            raise CheckFailed(f"bucket {bucket}: {type(exc).__name__}") from exc
        return f"bucket {bucket} answers"
    location = default_storage.location
    try:
        default_storage.listdir("")
    except FileNotFoundError:
        # Nothing stored yet: the directory is made on the first save, if it can be.
        parent = Path(location).parent
        while not parent.exists():
            parent = parent.parent
        if not _writable(parent):
            raise CheckFailed(f"{location} does not exist and cannot be made") from None
        return f"{location} not made yet (nothing stored)"
    except OSError as exc:
        raise CheckFailed(f"{location}: {exc.strerror}") from exc
    if not _writable(location):
        raise CheckFailed(f"{location} is not writable")
    return f"{location} readable and writable"


def _writable(path) -> bool:
    return os.access(path, os.W_OK | os.X_OK)


def check_kek() -> str:
    """The key-encryption key opens the log key (which proves it is the one the hosted
    keys were sealed under)."""
    from ledger import services as ledger

    if not ledger.Key.objects.filter(kind="log").exists():
        return "no log key yet (manage.py ledger init)"
    try:
        signer = ledger.log_signer()
    except ledger.HostedKeyError as exc:
        raise CheckFailed(str(exc)) from exc
    return f"the log key {signer.fingerprint[:16]} unseals"


def check_ledger() -> str:
    """The latest checkpoint within the tree is signed by one of the log's keys, for the
    log's origin, and its note says the size and root the database stored with it; and
    the database is not behind (nor other than) the newest checkpoint ever published,
    kept outside it (a restored old backup: ``ledger.published``, docs/backups.md)."""
    from ledger import services as ledger
    from ledger.core.note import NoteError, Verifier, key_id, open_checkpoint

    size = ledger.tree_size()
    behind = ledger.behind_published(size)
    if behind is not None:
        raise CheckFailed(f"read-only: {behind}")
    latest = ledger.latest_checkpoint()
    if latest is None:
        return f"{size} entries, no checkpoint yet"
    for key in ledger.Key.objects.filter(kind="log"):
        public_key = bytes(key.public_key)
        verifier = Verifier(key.name, key_id(key.name, public_key), public_key)
        try:
            signed = open_checkpoint(latest.note, verifier, origin=ledger.log_origin())
        except NoteError:
            continue
        if (signed.size, signed.root) != (latest.tree_size, bytes(latest.root_hash)):
            raise CheckFailed(f"the checkpoint at size {latest.tree_size} differs from its note")
        return f"{size} entries; the checkpoint at {latest.tree_size} verifies"
    raise CheckFailed(f"the checkpoint at size {latest.tree_size} is not signed by a log key")


CHECKS = {
    "database": check_database,
    "broker": check_broker,
    "storage": check_storage,
    "kek": check_kek,
    "ledger": check_ledger,
}


def _run(check) -> dict:
    try:
        return {"ok": True, "detail": check()}
    except CheckFailed as exc:
        return {"ok": False, "detail": str(exc)}
    except Exception as exc:
        return {"ok": False, "detail": f"{type(exc).__name__}: {exc}"[:300]}
    finally:
        # Each check runs on a thread of its own, which keeps no connection.
        connection.close()


def readiness() -> dict:
    """Every check, side by side; one that has not answered in READYZ_TIMEOUT failed."""
    timeout = settings.READYZ_TIMEOUT
    pool = ThreadPoolExecutor(max_workers=len(CHECKS), thread_name_prefix="readyz")
    try:
        futures = {name: pool.submit(_run, check) for name, check in CHECKS.items()}
        wait(futures.values(), timeout=timeout + 0.5)
        checks = {
            name: f.result()
            if f.done()
            else {"ok": False, "detail": f"no answer within {timeout:g} s"}
            for name, f in futures.items()
        }
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return {"status": "ok" if all(c["ok"] for c in checks.values()) else "fail", "checks": checks}


def _no_store(response):
    response["Cache-Control"] = "no-store"
    return response


def healthz(request):
    """The process answers; nothing else is asked."""
    return _no_store(JsonResponse({"status": "ok"}))


def readyz(request):
    """Every check's outcome; what each found (paths, errors) only for the addresses that
    may read the metrics, and the status alone for anyone else."""
    from consortium.web.metrics import allowed

    started = time.perf_counter()
    body = readiness()
    body["seconds"] = round(time.perf_counter() - started, 3)
    if allowed(request) is not None:
        body["checks"] = {name: {"ok": c["ok"]} for name, c in body["checks"].items()}
    return _no_store(JsonResponse(body, status=200 if body["status"] == "ok" else 503))


class ProbeMiddleware:
    """``/healthz``, ``/readyz`` and ``/metrics`` answered before the middleware after it
    (sessions, host check, HTTPS redirect), GET and HEAD only."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        route = PROBES.get(request.path_info)
        if route is None:
            return self.get_response(request)
        request.probe_route = route
        if request.method not in ("GET", "HEAD"):
            response = JsonResponse({"detail": "GET or HEAD"}, status=405)
            response["Allow"] = "GET, HEAD"
            return response
        if route == "metrics":
            from consortium.web.metrics import metrics_view

            return metrics_view(request)
        return healthz(request) if route == "healthz" else readyz(request)
