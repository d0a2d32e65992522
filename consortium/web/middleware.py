"""Requests refused before any view: U+0000 in the path or the query string."""

from __future__ import annotations

from django.http import HttpResponseBadRequest, JsonResponse

from consortium.web.problems import PROBLEM_JSON, problem


class RefuseNulMiddleware:
    """A path or query parameter holding U+0000 is a 400: no database can be asked for it
    (PostgreSQL refuses the character in text)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        query = request.META.get("QUERY_STRING", "")
        if "\x00" in request.path or "%00" in query or "\x00" in query:
            detail = "U+0000 is not accepted in a path or a query parameter"
            if request.path.startswith("/api/"):
                return JsonResponse(problem(400, detail), status=400, content_type=PROBLEM_JSON)
            return HttpResponseBadRequest(detail)
        return self.get_response(request)
