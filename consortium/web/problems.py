"""RFC 9457 problem details for every API error."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from ledger.services import EntryTooLarge, HostedKeyError, LogBehind

PROBLEM_JSON = "application/problem+json"

TITLES = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    413: "Content too large",
    415: "Unsupported media type",
    416: "Range not satisfiable",
    422: "Unprocessable content",
    429: "Too many requests",
    503: "Service unavailable",
}


def problem(status_code: int, detail: str, *, errors=None, **extra) -> dict:
    body = {
        "type": "about:blank",
        "title": TITLES.get(status_code, "Error"),
        "status": status_code,
        "detail": detail,
    }
    if errors:
        body["errors"] = errors
    body.update(extra)
    return body


def _detail(data) -> tuple[str, object]:
    """A one-line detail, and the field errors when there are several."""
    if isinstance(data, dict):
        if set(data) == {"detail"}:
            return str(data["detail"]), None
        parts = []
        for field, msgs in data.items():
            msg = msgs[0] if isinstance(msgs, list) and msgs else msgs
            parts.append(f"{field}: {msg}")
        return "; ".join(parts), data
    if isinstance(data, list):
        return "; ".join(str(d) for d in data), None
    return str(data), None


def too_large_detail() -> str:
    return (
        f"the body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes, "
        "the most a JSON body may hold"
    )


def translate(exc: Exception) -> Exception:
    """Exceptions from below the API that are the client's or the operator's to act on,
    as the problem they are (the one place each is translated):

    - a body over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (Django's ``RequestDataTooBig``) is a
      413, like a body over the project's own limits;
    - a hosted key that cannot be unsealed (``LEDGER_KEK`` is not the key-encryption key
      it was sealed under) is a 409 naming both keys' ids, whoever's key it is (a
      member's, a facility's, the secretariat's, the log's): the request was fine, the
      server cannot sign until its operator restores the KEK. The services that turn it
      into a ``GovernanceError`` for the admin and the commands keep its message and
      status, so the API answers the same problem either way;
    - an entry whose leaf would be over 65,535 bytes (``EntryTooLarge``) is a 413 naming
      its size and the limit;
    - a log whose database is behind the checkpoint it last published (``LogBehind``,
      a restored old backup) is a 503 saying which entries are missing.
    """
    if isinstance(exc, RequestDataTooBig):
        return ProblemException(413, too_large_detail())
    if isinstance(exc, HostedKeyError):
        return ProblemException(409, str(exc))
    if isinstance(exc, EntryTooLarge):
        return ProblemException(413, str(exc))
    if isinstance(exc, LogBehind):
        # A restored old backup: read-only until its missing entries are re-ingested.
        return ProblemException(503, str(exc))
    return exc


def exception_handler(exc, context):
    exc = translate(exc)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    detail, errors = _detail(response.data)
    headers = dict(response.items())
    headers.update(getattr(exc, "headers", None) or {})  # e.g. Content-Range on a 416
    out = Response(
        problem(response.status_code, detail, errors=errors),
        status=response.status_code,
        headers=headers,
        content_type=PROBLEM_JSON,
    )
    return out


class ProblemException(exceptions.APIException):
    """Raise from a view to answer with a problem of any status."""

    def __init__(self, status_code: int, detail: str):
        self.status_code = status_code
        super().__init__(detail)


def bad_request(detail: str) -> ProblemException:
    return ProblemException(status.HTTP_400_BAD_REQUEST, detail)


def not_found(detail: str) -> ProblemException:
    return ProblemException(status.HTTP_404_NOT_FOUND, detail)


def api_not_found(request, exception=None):
    """Django's 404 for unknown URLs, as problem+json under /api/."""
    detail = "no such endpoint" if not isinstance(exception, Http404) else "not found"
    return JsonResponse(problem(404, detail), status=404, content_type=PROBLEM_JSON)


def api_bad_request(request, exception=None):
    """Django's 400 (a bad Host header, say) as problem+json under /api/; a body over
    DATA_UPLOAD_MAX_MEMORY_SIZE read outside a view is a 413."""
    if isinstance(exception, RequestDataTooBig):
        return JsonResponse(problem(413, too_large_detail()), status=413, content_type=PROBLEM_JSON)
    return JsonResponse(problem(400, "bad request"), status=400, content_type=PROBLEM_JSON)


def api_server_error(request):
    return JsonResponse(
        problem(500, "internal error; it has been logged"), status=500, content_type=PROBLEM_JSON
    )
