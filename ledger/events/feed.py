"""What the events stream and the webhooks read: the entries after a cursor that pass the
entries list's filters, as the entries API renders them, and what wakes a stream when the
log grows (PostgreSQL LISTEN, else polling)."""

from __future__ import annotations

import asyncio
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


class Poller:
    """Wakes every ``LEDGER_EVENTS_POLL_SECONDS``: on SQLite, or when LISTEN is not to be
    used (PgBouncer in transaction mode does not pass notifications on)."""

    async def wait(self, timeout: float) -> None:
        await asyncio.sleep(min(timeout, settings.LEDGER_EVENTS_POLL_SECONDS))

    async def close(self) -> None:
        return None


class Listener:
    """Wakes when an append commits (its transaction NOTIFYs ``CHANNEL``), on a connection
    of its own made straight to PostgreSQL. A notification sent while the stream was
    reading is kept by the connection, so none is missed between a read and a wait."""

    def __init__(self, conn):
        self.conn = conn

    @classmethod
    async def open(cls) -> Listener:
        import psycopg

        params = connection.get_connection_params()
        for django_only in (
            "context",
            "cursor_factory",
            "server_side_binding",
            "prepare_threshold",
        ):
            params.pop(django_only, None)
        conn = await psycopg.AsyncConnection.connect(**params, autocommit=True)
        await conn.execute(f"LISTEN {CHANNEL}")
        return cls(conn)

    async def wait(self, timeout: float) -> None:
        async for _ in self.conn.notifies(timeout=timeout, stop_after=1):
            break

    async def close(self) -> None:
        await self.conn.close()


async def waiter():
    """A :class:`Listener` on PostgreSQL (unless ``LEDGER_EVENTS_LISTEN`` is off), else a
    :class:`Poller`; a LISTEN that fails falls back to polling, saying so in the log."""
    if connection.vendor == "postgresql" and settings.LEDGER_EVENTS_LISTEN:
        try:
            return await Listener.open()
        except Exception as exc:
            log.warning("events: LISTEN unavailable (%s); polling the entries instead", exc)
    return Poller()


def event(entry) -> bytes:
    """One Server-Sent Event: the entry's index as its id, its kind as its type."""
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (
        entry.index,
        entry.kind.encode(),
        entry_json(entry),
    )


def keepalive_due(last: float) -> bool:
    return time.monotonic() - last >= settings.LEDGER_EVENTS_KEEPALIVE_SECONDS
