"""``GET /api/v1/ledger/events``: the log's new entries as Server-Sent Events.

Authenticated and filtered exactly as the entries list (the same authentication, the
same seat check, the same ``EntryFilter``); each event is ``id: <index>``, ``event:
<kind>``, ``data: <the entry as the entries API renders it>``. Served by the ASGI server
(``consortium.asgi``), where a stream stays open; under WSGI a request would hold a
worker for as long as it stays open, so there the answer is bounded: what is already
there after the cursor (at most ``LEDGER_EVENTS_BATCH`` events), then the stream ends and
the client reconnects after the ``retry`` hint with its ``Last-Event-ID``."""

from __future__ import annotations

import time

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.handlers.wsgi import WSGIRequest
from django.db import close_old_connections
from django.http import StreamingHttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, renderers, serializers
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.views import APIView

from ledger.api.fields import AsciiIntegerField
from ledger.api.views import PROBLEMS, EntryFilter
from ledger.core.envelope import MAX_SAFE_INTEGER
from ledger.events import feed
from ledger.models import Entry

MEDIA_TYPE = "text/event-stream"
# One event of the stream as an EventSource (or any SSE parser) hands it over: the schema
# of the text/event-stream answer describes its events, not its bytes.
SSE_EVENT = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "description": "The entry's index."},
        "event": {"type": "string", "description": "The entry's kind."},
        "data": {
            "type": "string",
            "description": "The entry as JSON, as the entries list renders it.",
        },
        "retry": {"type": "integer", "description": "Milliseconds before reconnecting."},
    },
}


class EventStreamRenderer(renderers.BaseRenderer):
    """text/event-stream for the stream; a refusal (a dict) as its problem JSON."""

    media_type = MEDIA_TYPE
    format = "sse"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return renderers.JSONRenderer().render(data)


class AnyAccept(BaseContentNegotiation):
    """The stream is the one thing this URL answers, whatever the Accept header says (an
    EventSource sends text/event-stream, curl */*); a refusal is problem+json either way."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class EventsQuery(serializers.Serializer):
    after = AsciiIntegerField(
        required=False,
        min_value=-1,
        max_value=MAX_SAFE_INTEGER,
        help_text="Start after this index (as Last-Event-ID does, which wins when both are sent).",
    )
    from_ = AsciiIntegerField(
        required=False,
        min_value=0,
        max_value=MAX_SAFE_INTEGER,
        help_text="Start at this index (default: from now, the next entry appended).",
    )

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = fields.pop("from_")
        return fields


def _cursor(request) -> int | None:
    """The index to start after, from Last-Event-ID, ``after`` or ``from``; ``None``: now."""
    header = request.headers.get("Last-Event-ID")
    if header is not None:
        field = AsciiIntegerField(min_value=-1, max_value=MAX_SAFE_INTEGER)
        try:
            return field.run_validation(header.strip())
        except serializers.ValidationError as exc:
            raise exceptions.ValidationError({"Last-Event-ID": exc.detail}) from exc
    query = EventsQuery(data=request.query_params)
    query.is_valid(raise_exception=True)
    if "after" in query.validated_data:
        return query.validated_data["after"]
    if "from" in query.validated_data:
        return query.validated_data["from"] - 1
    return None


class EventsView(APIView):
    renderer_classes = [EventStreamRenderer]
    content_negotiation_class = AnyAccept

    def _start(self, request):
        """Authenticate, check the seat and the parameters (sync: the ORM and DRF's
        authentication); the queryset and cursor, or the problem to answer with."""
        drf_request = self.initialize_request(request)
        self.request = drf_request
        self.headers = self.default_response_headers
        try:
            self.initial(drf_request)
            filters = EntryFilter(drf_request.query_params, queryset=Entry.objects.all())
            if not filters.is_valid():
                raise exceptions.ValidationError(
                    [m for messages in filters.errors.values() for m in messages]
                )
            cursor = _cursor(drf_request)
            if cursor is None:
                cursor = feed.last_index()
            return filters.qs, cursor, None
        except Exception as exc:
            response = self.finalize_response(drf_request, self.handle_exception(exc))
            response.render()
            return None, None, response

    @extend_schema(
        operation_id="ledger_events",
        summary="New entries as Server-Sent Events",
        description=(
            "A `text/event-stream`: each entry as an event whose `id` is its index, whose "
            "`event` is its kind and whose `data` is the entry as the entries list renders "
            "it. Starts after `Last-Event-ID` (what an EventSource sends when it "
            "reconnects), else after `after`, else at `from`, else with the next entry "
            "appended; `kind` and `member` filter as they do the entries list. Comment "
            "lines keep the connection alive. Open on the events server (ASGI); the WSGI "
            "server answers what is already there (a bounded stream) and ends it, and the "
            "client reconnects after the `retry` hint. See docs/events.md."
        ),
        parameters=[
            EventsQuery,
            OpenApiParameter(
                "Last-Event-ID",
                str,
                OpenApiParameter.HEADER,
                description="The index of the last event received: start after it.",
            ),
            OpenApiParameter(
                "kind",
                {"type": "string", "maxLength": 64},
                description="Only entries of this kind; repeat the parameter for several "
                "kinds (`kind=a&kind=b`), as on the entries list.",
            ),
            OpenApiParameter(
                "member",
                str,
                description="Only entries signed by a key this member (or owner) holds or held.",
            ),
        ],
        responses={
            (200, MEDIA_TYPE): OpenApiResponse(
                SSE_EVENT, description="The stream: events, each as below once parsed."
            ),
            400: PROBLEMS[400],
            401: PROBLEMS[401],
            403: OpenApiResponse(PROBLEMS[400].response, description="No seat (problem+json)."),
        },
    )
    async def get(self, request, *args, **kwargs):
        queryset, cursor, refused = await sync_to_async(self._start)(request)
        if refused is not None:
            return refused
        if isinstance(request, WSGIRequest):
            body = await sync_to_async(_bounded)(queryset, cursor)
            response = StreamingHttpResponse(iter([body]), content_type=MEDIA_TYPE)
        else:
            # The request's own connection (authentication, the head) is not held for
            # the hours the stream may last.
            await sync_to_async(close_old_connections)()
            response = StreamingHttpResponse(_stream(queryset, cursor), content_type=MEDIA_TYPE)
        response["Cache-Control"] = "no-cache"
        # nginx: pass each event on at once (deploy/nginx/events.conf says it too).
        response["X-Accel-Buffering"] = "no"
        return response

    async def dispatch(self, request, *args, **kwargs):
        self.args, self.kwargs = args, kwargs
        if request.method not in ("GET", "HEAD"):
            return await sync_to_async(self._refuse_method)(request)
        return await self.get(request, *args, **kwargs)

    def _refuse_method(self, request):
        drf_request = self.initialize_request(request)
        self.request, self.headers = drf_request, self.default_response_headers
        exc = exceptions.MethodNotAllowed(request.method)
        response = self.finalize_response(drf_request, self.handle_exception(exc))
        response.render()
        return response


def _head(cursor: int) -> bytes:
    """The reconnection hint, and the cursor as the stream's last event id (an ``id``
    field with no data sets it without an event): a client that came "from now" and
    reconnects resumes from where it joined."""
    head = b"retry: %d\n" % settings.LEDGER_EVENTS_RETRY_MS
    return head + (b"id: %d\n\n" % cursor if cursor >= 0 else b"\n")


def _bounded(queryset, cursor: int) -> bytes:
    entries = feed.entries_after(queryset, cursor, settings.LEDGER_EVENTS_BATCH)
    return _head(cursor) + b"".join(feed.event(e) for e in entries)


def _batch(queryset, cursor: int) -> list[tuple[int, bytes]]:
    # On the shared thread pool, not a thread per stream; each read is a request's worth
    # of database work, its connection kept no longer than CONN_MAX_AGE says: an idle
    # stream holds no connection.
    close_old_connections()
    try:
        return [
            (e.index, feed.event(e))
            for e in feed.entries_after(queryset, cursor, settings.LEDGER_EVENTS_BATCH)
        ]
    finally:
        close_old_connections()


async def _stream(queryset, cursor: int):
    woken = feed.hub.join()
    try:
        yield _head(cursor)
        sent = time.monotonic()
        while True:
            # Cleared before the read: an append committed from here on sets it again.
            woken.clear()
            batch = await sync_to_async(_batch, thread_sensitive=False)(queryset, cursor)
            for index, text in batch:
                yield text
                cursor, sent = index, time.monotonic()
            if len(batch) == settings.LEDGER_EVENTS_BATCH:
                continue
            if feed.keepalive_due(sent):
                yield b": keep-alive\n\n"
                sent = time.monotonic()
            await feed.hub.wait(woken, settings.LEDGER_EVENTS_KEEPALIVE_SECONDS)
    finally:
        feed.hub.leave(woken)
