"""RFC 9457 problem details for every API error."""

from __future__ import annotations

from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

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


def exception_handler(exc, context):
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
    """Django's 400 (a bad Host header, say) as problem+json under /api/."""
    return JsonResponse(problem(400, "bad request"), status=400, content_type=PROBLEM_JSON)


def api_server_error(request):
    return JsonResponse(
        problem(500, "internal error; it has been logged"), status=500, content_type=PROBLEM_JSON
    )
