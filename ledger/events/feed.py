"""What the events stream and the webhooks read: the entries after a cursor that pass the
entries list's filters, as the entries API renders them, and what wakes a stream when the
log grows (PostgreSQL LISTEN, else polling)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from django.conf import settings
from django.db import connection
from rest_framework.renderers import JSONRenderer

from ledger.events import CHANNEL

log = logging.getLogger(__name__)


def entry_json(entry) -> bytes:
    """The entry as the entries API renders it (the same bytes: compact JSON)."""
    from ledger.api.serializers import EntrySerializer

    return JSONRenderer().render(EntrySerializer(entry).data)


def entries_after(queryset, after: int, limit: int) -> list:
    """The next ``limit`` entries of ``queryset`` (already filtered) after index ``after``."""
    return list(queryset.filter(index__gt=after).order_by("index")[:limit])


def last_index() -> int:
    """The index of the newest entry (-1 for an empty log)."""
    from ledger.models import LogHead

    head = LogHead.objects.filter(id=1).values_list("size", flat=True).first()
    return (head or 0) - 1


class Hub:
    """One LISTEN connection per process, however many streams it serves: each stream
    holds an ``asyncio.Event`` the hub sets when an append commits (its transaction
    NOTIFYs ``CHANNEL``). While the hub has no connection (SQLite, ``LEDGER_EVENTS_LISTEN``
    off, PostgreSQL unreachable or behind PgBouncer in transaction mode) streams poll the
    entries every ``LEDGER_EVENTS_POLL_SECONDS``; a lost connection is made again."""

    def __init__(self):
        self.events: set[asyncio.Event] = set()
        self.listening = False
        self.task: asyncio.Task | None = None

    def join(self) -> asyncio.Event:
        woken = asyncio.Event()
        self.events.add(woken)
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._listen())
        return woken

    def leave(self, woken: asyncio.Event) -> None:
        self.events.discard(woken)

    def _wake(self) -> None:
        for woken in list(self.events):
            woken.set()

    async def _listen(self) -> None:
        if connection.vendor != "postgresql" or not settings.LEDGER_EVENTS_LISTEN:
            return
        import psycopg

        params = connection.get_connection_params()
        for django_only in ("context", "cursor_factory", "prepare_threshold"):
            params.pop(django_only, None)
        while self.events:
            try:
                conn = await psycopg.AsyncConnection.connect(**params, autocommit=True)
                async with conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.listening = True
                    self._wake()  # anything appended before LISTEN is read now
                    async for _ in conn.notifies():
                        self._wake()
                        if not self.events:
                            break
            except Exception as exc:
                log.warning("events: LISTEN unavailable (%s); polling meanwhile", exc)
            finally:
                self.listening = False
            await asyncio.sleep(settings.LEDGER_EVENTS_POLL_SECONDS)

    async def wait(self, woken: asyncio.Event, timeout: float) -> None:
        """Until an append commits, or ``timeout`` seconds (the poll interval while the
        hub is not listening)."""
        if not self.listening:
            timeout = min(timeout, settings.LEDGER_EVENTS_POLL_SECONDS)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(woken.wait(), timeout)


hub = Hub()


def event(entry) -> bytes:
    """One Server-Sent Event: the entry's index as its id, its kind as its type."""
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (
        entry.index,
        entry.kind.encode(),
        entry_json(entry),
    )


def keepalive_due(last: float) -> bool:
    return time.monotonic() - last >= settings.LEDGER_EVENTS_KEEPALIVE_SECONDS
