"""Log lines as JSON (``LOG_FORMAT=json``), each request's id (carried to the Celery tasks it
queues), and one line per request.

Nothing of Django at module level: gunicorn's master imports the formatter for its own
log (deploy/gunicorn.conf.py) before Django is set up.

What a line may hold is a closed list (time, level, logger, message, request id, and for
the request line its method, route, status and duration): never a header, a cookie, a
query string or a form. Messages are written by this code base, yet a value quoted in one
(``password=...``, ``Bearer ...``) is blanked all the same.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import secrets
import time
from datetime import UTC, datetime

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")

# What the proxy may hand over as X-Request-ID (nginx's $request_id is 32 hex digits); any
# other value is replaced by one of ours, so a client cannot write into the logs.
_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{8,128}")
_SECRET = re.compile(
    r"(?i)\b(authorization|password|passwd|secret|token|otp|sessionid|csrftoken|api[_-]?key)"
    r"(\s*[=:]\s*)(?:bearer\s+)?[^\s&\"',;]+"
)
_BEARER = re.compile(r"(?i)\b(bearer)(\s+)[A-Za-z0-9._~+/=-]{8,}")
# A download's path holds its token (Django's "Internal Server Error: <path>" says it).
_DOWNLOAD_PATH = re.compile(r"(/api/v1/downloads/)[^/\s]+(/)")
# The request line's own fields, besides the message.
REQUEST_FIELDS = ("method", "route", "status", "duration_ms")

log = logging.getLogger("consortium.request")


def redact(text: str) -> str:
    """``text`` with any value after a secret's name, and download tokens, blanked."""
    text = _DOWNLOAD_PATH.sub(r"\1<token>\2", text)
    return _BEARER.sub(_blank, _SECRET.sub(_blank, text))


def _blank(match: re.Match) -> str:
    return f"{match.group(1)}{match.group(2)}[redacted]"


def sane_request_id(value: str | None) -> str:
    """The proxy's request id if it is a plain token, else a new one."""
    if value and _SANE_ID.fullmatch(value):
        return value
    return secrets.token_hex(16)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, and the request
    line's fields when present."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
            "request_id": getattr(record, "request_id", None) or request_id.get() or None,
        }
        for field in REQUEST_FIELDS:
            value = getattr(record, field, None)
            if value is not None:
                line[field] = value
        if record.exc_info:
            line["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(line, ensure_ascii=False, default=str)


class PlainFormatter(logging.Formatter):
    """The development format, with the request id when there is one."""

    def __init__(self):
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = redact(super().format(record))
        rid = request_id.get()
        return f"{text} [{rid}]" if rid else text


class RequestIdMiddleware:
    """First of all: the request's id (the proxy's X-Request-ID if sane, else a new one)
    in a context variable for every log line and task of the request and in the answer's
    X-Request-ID; then, once answered, the request's line in the log and its figures in
    the metrics (consortium.web.metrics)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        from consortium.web import metrics

        rid = sane_request_id(request.META.get("HTTP_X_REQUEST_ID"))
        request.request_id = rid
        token = request_id.set(rid)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            elapsed = time.perf_counter() - started
            route = route_of(request)
            metrics.request_observed(route, request.method, response.status_code, elapsed)
            # Probes answer every few seconds: their lines would drown the others.
            level = logging.DEBUG if route in ("healthz", "readyz", "metrics") else logging.INFO
            log.log(
                level,
                "%s %s %s",
                request.method,
                route,
                response.status_code,
                extra={
                    "method": request.method,
                    "route": route,
                    "status": response.status_code,
                    "duration_ms": round(elapsed * 1000, 1),
                },
            )
            response["X-Request-ID"] = rid
            return response
        finally:
            request_id.reset(token)


def route_of(request) -> str:
    """The URL pattern that answered (``api/v1/downloads/<str:token>/<path:path>``), never
    the path itself: paths carry tokens and identifiers, and would make a label per
    request. ``unmatched`` when no pattern did (a 404, or a redirect before routing)."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return getattr(request, "probe_route", None) or "unmatched"
    return match.route or match.view_name or "unmatched"


# --- Celery: a task queued during a request logs under that request's id -------------------

_task_tokens: dict[str, contextvars.Token] = {}


def _carry_request_id(headers=None, **kwargs) -> None:
    rid = request_id.get()
    if rid and headers is not None:
        headers.setdefault("request_id", rid)


def _adopt_request_id(task_id=None, task=None, **kwargs) -> None:
    rid = getattr(getattr(task, "request", None), "request_id", None)
    # In-process (eager) tasks run in the request's own context: nothing to adopt.
    if isinstance(rid, str) and _SANE_ID.fullmatch(rid) and task_id:
        _task_tokens[task_id] = request_id.set(rid)


def _drop_request_id(task_id=None, **kwargs) -> None:
    token = _task_tokens.pop(task_id, None)
    if token is not None:
        request_id.reset(token)


def _connect_celery() -> None:
    try:
        from celery import signals
    except ImportError:  # the formatter alone, in a process without Celery
        return
    signals.before_task_publish.connect(_carry_request_id, weak=False)
    signals.task_prerun.connect(_adopt_request_id, weak=False)
    signals.task_postrun.connect(_drop_request_id, weak=False)


_connect_celery()
