"""Following the log as it grows: the Server-Sent Events stream (``sse.py``), what wakes it
(``feed.py``: PostgreSQL NOTIFY or polling), and the signed CloudEvents the webhooks send
(``cloudevents.py``, ``delivery.py``); see docs/events.md.

The layers above register with :func:`after_append` to hear, once an append has committed,
that the log grew (the webhooks' fan-out); the ledger never imports them."""

from __future__ import annotations

import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

# PostgreSQL's channel: every append's transaction NOTIFYs it with the new tree size.
CHANNEL = "ledger_entries"

_hooks: list[Callable[[], None]] = []


def after_append(fn: Callable[[], None]) -> Callable[[], None]:
    """Register ``fn``, called (without arguments) after each append commits."""
    if fn not in _hooks:
        _hooks.append(fn)
    return fn


def appended() -> None:
    """After a commit: tell every registered hook; one failing never fails the others
    (the append has committed whatever they do)."""
    for fn in list(_hooks):
        try:
            fn()
        except Exception:
            log.exception("a hook after an append failed: %s", getattr(fn, "__name__", fn))
