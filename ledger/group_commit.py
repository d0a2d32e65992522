"""Group commit for appends that run in a transaction of their own.

The sequence lock is held until commit, so one commit per entry caps the rate at one
entry per commit latency. Callers that are not inside a transaction (API ingestion,
importers, tasks) queue their entries here; one of them, the leader, appends everything
queued in one transaction, then hands leadership to the next waiter. If a combined
append fails, each request is retried alone, so one bad entry fails only its own
caller. An append made by the leader's own thread while it leads (from a commit hook,
say) runs directly, never waiting on itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from django.db import transaction

from ledger.core.envelope import SignedEnvelope

if TYPE_CHECKING:
    from ledger.log import Appended

Append = Callable[[list[SignedEnvelope]], list["Appended"]]


class _Request:
    __slots__ = ("error", "event", "items", "lead", "result")

    def __init__(self, items: list[SignedEnvelope]):
        self.items = items
        self.event = threading.Event()
        self.result: list[Appended] | None = None
        self.error: BaseException | None = None
        self.lead = False


class GroupCommit:
    """Appends the queued entries of many callers with ``append`` (the append under the
    sequence lock, which returns the entries as appended, in order), in one transaction."""

    MAX_BATCH = 1000

    def __init__(self, append: Append) -> None:
        self._append = append
        self._mutex = threading.Lock()
        self._queue: list[_Request] = []
        self._leading = False
        self._local = threading.local()

    def submit(self, items: list[SignedEnvelope]) -> list[Appended]:
        if getattr(self._local, "leading", False):
            with transaction.atomic():
                return self._append(items)
        req = _Request(items)
        with self._mutex:
            self._queue.append(req)
            if not self._leading:
                self._leading = req.lead = True
        if not req.lead:
            req.event.wait()
        if req.lead:
            self._lead()
        if req.error is not None:
            raise req.error
        assert req.result is not None
        return req.result

    def _lead(self) -> None:
        with self._mutex:
            batch, count = [], 0
            while self._queue:
                if batch and count + len(self._queue[0].items) > self.MAX_BATCH:
                    break
                req = self._queue.pop(0)
                batch.append(req)
                count += len(req.items)
        self._local.leading = True
        try:
            self._run(batch)
        except BaseException as exc:
            for req in batch:
                if req.result is None and req.error is None:
                    req.error = exc
            raise
        finally:
            self._local.leading = False
            with self._mutex:
                if self._queue:
                    nxt = self._queue[0]
                    nxt.lead = True
                    nxt.event.set()
                else:
                    self._leading = False
            for req in batch:
                req.lead = False
                req.event.set()

    def _run(self, batch: list[_Request]) -> None:
        combined = [it for req in batch for it in req.items]
        if len({it.entry_id for it in combined}) == len(combined):
            try:
                with transaction.atomic():
                    out = self._append(combined)
            except Exception as exc:
                if len(batch) == 1:
                    batch[0].error = exc
                    return
            else:
                pos = 0
                for req in batch:
                    req.result = out[pos : pos + len(req.items)]
                    pos += len(req.items)
                return
        # Alone, each request succeeds or fails on its own.
        for req in batch:
            try:
                with transaction.atomic():
                    req.result = self._append(req.items)
            except Exception as exc:
                req.error = exc
