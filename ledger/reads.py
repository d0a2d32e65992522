"""Reads from streaming replicas (``DATABASE_REPLICA_URLS``), only where that is safe
(the router that applies it: ``consortium.dbrouter``).

A replica is read only inside :func:`replica_reads`, which the ledger's read endpoints
enter with :func:`reads_from_replica` for a GET or HEAD: never for a write, never inside a
transaction (what it reads may be about to be written), never once the request has
written through the ORM (it reads its own writes from the primary). A replica is a moment
behind the primary, so an answer it cannot give — an entry, a tree size or a checkpoint it
has not replayed yet, an ETag newer than its checkpoint — is asked again of the primary:
replication lag shows as one more query, never as a 404 or an older answer. A replica that
fails to answer is left alone for ``DATABASE_REPLICA_RETRY_SECONDS`` and its reads go to
the primary, with a warning in the log.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import random
import time
from collections.abc import Iterator

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.http import Http404
from rest_framework import exceptions

log = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD"})
# Answers a replica may give only because it lags: asked again of the primary.
LAG_STATUSES = frozenset({400, 404, 409, 503})


class _Reading:
    """The replica chosen for this request's reads, until the request writes."""

    __slots__ = ("alias", "wrote")

    def __init__(self, alias: str):
        self.alias = alias
        self.wrote = False


_reading: contextvars.ContextVar[_Reading | None] = contextvars.ContextVar(
    "replica_reading", default=None
)
# Replica alias -> monotonic time until which it is not tried (it failed to answer).
_resting: dict[str, float] = {}


class ReplicaBehind(Exception):
    """What the replica read is older than what the client has already seen."""


def _healthy_replica() -> str | None:
    now = time.monotonic()
    ready = [a for a in settings.DATABASE_REPLICAS if _resting.get(a, 0) <= now]
    return random.choice(ready) if ready else None


def replica_alias() -> str | None:
    """The replica the ORM reads from right now, or ``None`` for the primary."""
    reading = _reading.get()
    if reading is None or reading.wrote:
        return None
    if connections[DEFAULT_DB_ALIAS].in_atomic_block:
        return None
    return reading.alias


def reader():
    """The connection for raw reads (``ledger.proofs``): the replica's inside
    :func:`replica_reads` when it is safe, the primary's otherwise."""
    return connections[replica_alias() or DEFAULT_DB_ALIAS]


@contextlib.contextmanager
def replica_reads() -> Iterator[str | None]:
    """Reads in the body go to a healthy replica, if any; yields its alias or ``None``."""
    alias = _healthy_replica() if _reading.get() is None else None
    if alias is None:
        yield None
        return
    token = _reading.set(_Reading(alias))
    try:
        yield alias
    finally:
        _reading.reset(token)


@contextlib.contextmanager
def primary() -> Iterator[None]:
    """Reads in the body go to the primary, whatever encloses it (a view marked
    ``reads_from_replica`` inside it included)."""
    done = _Reading("")
    done.wrote = True
    token = _reading.set(done)
    try:
        yield
    finally:
        _reading.reset(token)


def _lagging(exc: Exception) -> bool:
    if isinstance(exc, (ReplicaBehind, Http404)):
        return True
    return isinstance(exc, exceptions.APIException) and exc.status_code in LAG_STATUSES


def reads_from_replica(handler):
    """A view method (``self, request, ...``) whose reads may go to a replica: a safe
    method only; an answer the replica gives because it lags, or a replica that fails,
    is asked again of the primary."""

    @functools.wraps(handler)
    def wrapped(self, request, *args, **kwargs):
        if request.method not in SAFE_METHODS or not settings.DATABASE_REPLICAS:
            return handler(self, request, *args, **kwargs)
        with replica_reads() as alias:
            if alias is None:
                return handler(self, request, *args, **kwargs)
            try:
                return handler(self, request, *args, **kwargs)
            except DatabaseError as exc:
                _resting[alias] = time.monotonic() + settings.DATABASE_REPLICA_RETRY_SECONDS
                log.warning(
                    "replica %s failed (%s): reads go to the primary for %s s",
                    alias,
                    str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
                    settings.DATABASE_REPLICA_RETRY_SECONDS,
                )
                # A broken connection is dropped, to be opened afresh when tried again.
                with contextlib.suppress(Exception):
                    connections[alias].close()
            except Exception as exc:
                if not _lagging(exc):
                    raise
        with primary():
            return handler(self, request, *args, **kwargs)

    return wrapped


def note_write() -> None:
    """The request wrote: its further reads go to the primary."""
    reading = _reading.get()
    if reading is not None:
        reading.wrote = True
