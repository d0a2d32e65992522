"""The lean path of the hottest reads: an inclusion or consistency proof, or a range of an
authorised download, answered near the top of the middleware, without the work a
browser's request needs (sessions, second factor, messages, CSRF) or REST framework's
per-request machinery.

Partner systems ask for proofs all day long, with the same bearer token, and a member's
download client fetches a large file as many ranges in turn. The proof itself costs a
query and a few hashes, and a range on a kept decision two queries (consortium.access.gate);
the middleware and REST framework around them cost as much again (docs/performance.md).
``LeanReadsMiddleware`` answers such a GET itself only when all of this holds:

- its bearer token is one this process accepted for a read within
  ``API_TOKEN_CACHE_SECONDS`` (the decision ``BearerTokenAuthentication`` kept: the same
  user, token and seat), and its address is not throttled for bad tokens;
- that decision passes the endpoint's permissions (``HoldsASeat``);
- its Accept header, if any, is one REST framework's content negotiation would answer
  with JSON as it stands (no media type parameters but ``q``);
- for a proof: its query is exactly the endpoint's parameters, each once, written as
  plain decimal numbers in range (``0``, or digits without a leading zero), in a valid
  order, and the proof can be made (the tree has reached the size asked);
- for a download: no query, and the request would be served as it stands
  (``downloads.serve_if_allowed``: the token, its holder, the file, the entitlement and
  the range all pass), its line in the access log kept as the full way keeps it;
- the request is one the middleware after it lets through untouched: a host in
  ALLOWED_HOSTS, no redirect due (to HTTPS, or to www.), a user agent not refused, no
  U+0000 in its path.

Anything else (no token or another scheme, a token not yet decided, a bad or unusual
query, a tree too small, a download refused, a redirect due) goes the full way, which
gives the answer or the error it always did, and keeps a refusal in the access log. The
lean answer carries what the full way's does: the same body, ETag, Cache-Control and
Allow (the file's headers for a download), and the headers the middleware adds, from the
same middleware's own hooks (security headers, X-Frame-Options, Content-Length, the
language's, the CSP worked out once per route). tests/ledger/test_lean_reads.py and
tests/access/test_lean_downloads.py hold the two ways to the same bytes and headers.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import DisallowedHost, PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, resolve, reverse
from django.utils.cache import patch_vary_headers
from django.utils.module_loading import import_string
from rest_framework import exceptions

from consortium.access import api as access_api
from consortium.access import downloads
from consortium.governance.auth import recent_reads, refuse_when_throttled
from consortium.web import metrics
from ledger.api import lean

# Accept entries REST framework's JSONRenderer answers: a media range and at most a q.
_JSON_RANGES = frozenset({"*/*", "application/*", "application/json"})


def _decided(request, view, permissions):
    """The (user, token) this process kept for the request's bearer token, when they pass
    the view's permissions; else None."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value:
        return None
    decided = recent_reads.get(value)
    if decided is None:
        return None
    try:
        refuse_when_throttled(request)
    except exceptions.Throttled:
        return None
    user, token = decided
    seen = _Authenticated(user, token)
    if not all(permission.has_permission(seen, view) for permission in permissions):
        return None
    # As REST framework sets them: the access log reads the request's user.
    request.user, request.auth = user, token
    return decided


class _Authenticated:
    """What a permission reads of a request: its user and its auth."""

    def __init__(self, user, auth):
        self.user, self.auth = user, auth


def _acceptable(request) -> bool:
    """Would REST framework's content negotiation pick JSONRenderer for this Accept, and
    render as it does without one? Entries with parameters besides ``q`` say no (the
    full way reads them: an ``indent``, say)."""
    header = request.META.get("HTTP_ACCEPT")
    if header is None:
        return True  # REST framework reads it as */*
    matched = False
    for entry in header.split(","):
        media, *params = (part.strip() for part in entry.split(";"))
        if any(not param.lower().startswith("q=") for param in params):
            return False
        matched = matched or media.lower() in _JSON_RANGES
    return matched


_SECURITY = "django.middleware.security.SecurityMiddleware"
_CSP = "csp.middleware.CSPMiddleware"
_COMMON = "django.middleware.common.CommonMiddleware"
_SESSIONS = "django.contrib.sessions.middleware.SessionMiddleware"
_LOCALE = "django.middleware.locale.LocaleMiddleware"
_FRAMES = "django.middleware.clickjacking.XFrameOptionsMiddleware"


class LeanReadsMiddleware:
    """Proof and download GETs answered before the rest of the middleware when they can be
    (see the module); placed after the request id and the probes, before everything
    else."""

    PROOFS = {
        "ledger:inclusion-proof": lean.inclusion,
        "ledger:consistency-proof": lean.consistency,
    }
    DOWNLOAD = "download"

    def __init__(self, get_response):
        self.get_response = get_response
        self._routes: dict[str, tuple] | None = None
        self._csp: dict[tuple, dict[str, str]] = {}
        after = settings.MIDDLEWARE[settings.MIDDLEWARE.index(_THIS) + 1 :]
        self._hooks = [
            (path, import_string(path)(get_response))
            for path in (_SECURITY, _CSP, _SESSIONS, _LOCALE, _COMMON, _FRAMES)
            if path in after
        ]
        self._hooks.sort(key=lambda hook: after.index(hook[0]))

    @staticmethod
    def _view(match):
        """The route's view, as REST framework makes it (what it says in Allow: its head
        is its get), and its permissions."""
        view = match.func.view_class()
        view.setup(HttpRequest())
        return view, view.get_permissions()

    def routes(self) -> dict[str, tuple]:
        """The proofs by their path, and the downloads' prefix (under ``None``)."""
        if self._routes is None:
            routes = {}
            for name, make in self.PROOFS.items():
                path = reverse(name)
                match = resolve(path)
                routes[path] = (make, match, *self._view(match))
            sample = reverse(self.DOWNLOAD, kwargs={"token": "t", "path": "p"})
            routes[None] = (sample.removesuffix("t/p"), *self._view(resolve(sample)))
            self._routes = routes
        return self._routes

    def __call__(self, request):
        if request.method == "GET" and _acceptable(request):
            routes = self.routes()
            response = None
            if route := routes.get(request.path_info):
                response = self.proof(request, *route)
            elif request.path_info.startswith(routes[None][0]):
                response = self.download(request, *routes[None][1:])
            if response is not None:
                return response
        return self.get_response(request)

    def passes_untouched(self, request) -> bool:
        """What the middleware after this one checks before any view (the host, a
        redirect to HTTPS or to www., a user agent refused), all passed."""
        try:
            return not any(
                hook.process_request(request) is not None
                for path, hook in self._hooks
                if path in (_SECURITY, _COMMON)
            )
        except (DisallowedHost, PermissionDenied):
            return False

    def proof(self, request, make, match, view, permissions) -> HttpResponse | None:
        if not self.passes_untouched(request) or _decided(request, view, permissions) is None:
            return None
        response = lean.answer(request, make)
        if response is None:
            return None
        return self.answered(request, match, view, response)

    def download(self, request, view, permissions) -> HttpResponse | None:
        if (
            request.META.get("QUERY_STRING")
            or "\x00" in request.path
            or not self.passes_untouched(request)
        ):
            return None
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return None
        if match.url_name != self.DOWNLOAD or _decided(request, view, permissions) is None:
            return None
        serving = downloads.serve_if_allowed(
            request=request,
            token=match.kwargs["token"],
            path=match.kwargs["path"],
            range_header=request.headers.get("Range", ""),
            range_by_server=access_api.range_by_server(),
        )
        if serving is None:
            return None
        return self.answered(request, match, view, access_api.file_response(serving))

    def answered(self, request, match, view, response: HttpResponse) -> HttpResponse:
        request.resolver_match = match
        # On a 304 too, as REST framework's views say it.
        response["Allow"] = ", ".join(view.allowed_methods)
        metrics.LEAN_READS.labels(match.url_name).inc()
        return self.finish(request, response)

    def finish(self, request, response: HttpResponse) -> HttpResponse:
        """The headers the middleware after this one adds, by its own hooks."""
        for path, hook in self._hooks:
            if path == _LOCALE:
                hook.process_request(request)
        for path, hook in reversed(self._hooks):
            if path == _CSP:
                response = self._with_csp(request, response, hook)
            elif path == _SESSIONS:
                # The full way reads request.user from the session (the second factor's
                # check), which marks it read: its answer varies with the cookie.
                patch_vary_headers(response, ("Cookie",))
            else:
                response = hook.process_response(request, response)
        return response

    def _with_csp(self, request, response, hook):
        """The CSP headers, worked out by the CSP middleware once per route and status
        (no nonce is asked for here), then copied."""
        key = (request.resolver_match.view_name, response.status_code)
        if key not in self._csp:
            probe = HttpResponse(status=response.status_code)
            hook.process_request(request)
            hook.process_response(request, probe)
            self._csp[key] = {
                name: probe[name]
                for name in ("Content-Security-Policy", "Content-Security-Policy-Report-Only")
                if name in probe
            }
        for name, value in self._csp[key].items():
            response[name] = value
        return response


_THIS = f"{LeanReadsMiddleware.__module__}.{LeanReadsMiddleware.__qualname__}"
