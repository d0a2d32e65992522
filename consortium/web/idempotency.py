"""Idempotent writes: a retry with the same ``Idempotency-Key`` answers exactly what the
first request did.

Every API view of the project derives from :class:`ApiView`. A POST with an
``Idempotency-Key`` is looked up, after authentication and before the view runs, under
the user and the key: a key already answered replays the stored status and body (and
``Location``), a key used for another request (method, path, query or body differ) is a
409, and nothing is written either way. The first successful (2xx) answer is stored
once the view has returned, that is after its entries committed. Refusals are not
stored: they wrote nothing, and a retry is asked again.

The services keep their own idempotency by entry id (``idem-<user>-<key>``), which
still stops a second entry if two retries race, or if the process stops between the
commit and the storing of the answer.
"""

from __future__ import annotations

import hashlib
import json
import re

from django.db import IntegrityError, transaction
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from consortium.web.models import IdempotentResponse
from consortium.web.problems import ProblemException, bad_request

HEADER = "Idempotency-Key"
# What a client may send as a key (also the services' check of a key handed to them).
IDEMPOTENCY_KEY_RE = re.compile(r"[A-Za-z0-9._:-]{1,64}")


class _Replay(Exception):
    def __init__(self, stored: IdempotentResponse):
        self.stored = stored


def request_sha256(request) -> str:
    """What identifies a request: method, path, query and body (JSON bodies by their
    parsed value, so that a retry may serialise them differently; raw bodies by their
    bytes)."""
    data = request.data
    if isinstance(data, bytes | bytearray):
        body = hashlib.sha256(data).hexdigest()
    else:
        body = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    query = sorted(request.query_params.lists())
    text = json.dumps([request.method, request.path, query, body], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


class ApiView(APIView):
    """The base of every API view: idempotent POSTs (see the module)."""

    _idempotency: tuple[str, str] | None = None

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        self._idempotency = None
        key = request.headers.get(HEADER)
        if request.method != "POST" or not key:
            return
        if not IDEMPOTENCY_KEY_RE.fullmatch(key):
            raise bad_request(f"{HEADER} is 1-64 letters, digits and . _ : -")
        fingerprint = request_sha256(request)
        stored = IdempotentResponse.objects.filter(user=request.user, key=key).first()
        if stored is not None:
            if stored.request_sha256 != fingerprint:
                raise ProblemException(409, f"this {HEADER} was used for another request")
            raise _Replay(stored)
        self._idempotency = (key, fingerprint)

    def handle_exception(self, exc):
        if isinstance(exc, _Replay):
            stored = exc.stored
            headers = {"Location": stored.location} if stored.location else None
            return Response(stored.body, status=stored.status, headers=headers)
        return super().handle_exception(exc)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if (
            self._idempotency is not None
            and isinstance(response, Response)
            and 200 <= response.status_code < 300
        ):
            key, fingerprint = self._idempotency
            self._idempotency = None
            body = json.loads(JSONRenderer().render(response.data) or b"null")
            try:
                with transaction.atomic():
                    IdempotentResponse.objects.create(
                        user=request.user,
                        key=key,
                        request_sha256=fingerprint,
                        status=response.status_code,
                        body=body,
                        location=response.get("Location", "")[:500],
                    )
            except IntegrityError:
                pass  # a concurrent retry stored its answer first: the same entries
        return response


def prune(*, keep_days: int | None = None, now=None) -> int:
    """Forget answers kept longer than ``IDEMPOTENCY_KEEP_DAYS`` (a retry comes within
    minutes or hours, not weeks); the number forgotten."""
    from datetime import timedelta

    from django.conf import settings
    from django.utils import timezone

    days = settings.IDEMPOTENCY_KEEP_DAYS if keep_days is None else keep_days
    cutoff = (now or timezone.now()) - timedelta(days=days)
    deleted, _ = IdempotentResponse.objects.filter(created_at__lt=cutoff).delete()
    return deleted
