"""Long work off the request: on Celery when there is a broker, else on a worker thread of
this process.

Without a broker (the demo, the zero-setup default) Celery runs tasks eagerly, inside the
request that asks for them: an audit export would hold the page for as long as it takes
and its progress would only ever be seen at 100 %. ``later`` hands such work to a small
thread pool instead, and the request returns at once; the work reports its progress on its
own row, which the page reads.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import close_old_connections, connections

log = logging.getLogger(__name__)

# Two workers: one long export does not hold up a checkpoint's re-verification, and the
# web process keeps its other thread(s) for requests (SQLite takes one writer at a time).
WORKERS = 2

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
_inline = contextvars.ContextVar("background_inline", default=False)


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="background")
        return _pool


@contextlib.contextmanager
def inline():
    """Run the work asked for inside this block where it is asked for (management
    commands: their output says what was done, so they wait for it)."""
    token = _inline.set(True)
    try:
        yield
    finally:
        _inline.reset(token)


def in_thread() -> bool:
    """Whether ``later`` hands work to this process's worker threads."""
    return (
        bool(getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False))
        and bool(getattr(settings, "BACKGROUND_THREADS", False))
        and not _inline.get()
    )


def later(task, *args, on_failure: Callable[[BaseException], None] | None = None):
    """Run the Celery ``task`` with ``args`` off the request: ``task.delay`` with a broker
    (or inside ``inline``/with BACKGROUND_THREADS off), else on a worker thread.
    ``on_failure`` records an exception the task let through on the job's own row, so
    that the page following it shows the failure."""
    if not in_thread():
        return task.delay(*args)
    return _executor().submit(_run, task, args, on_failure)


def _run(task, args: tuple, on_failure) -> None:
    close_old_connections()
    try:
        task(*args)  # the task's body, in this thread
    except BaseException as exc:
        log.exception("background task %s%r failed", task.name, args)
        if on_failure is not None:
            try:
                on_failure(exc)
            except Exception:
                log.exception("recording the failure of %s%r failed", task.name, args)
    finally:
        # A thread's connections are its own: closed here, not left for the server to leak.
        connections.close_all()


def wait() -> None:
    """Wait until the work handed over so far is done (tests, and a clean shutdown)."""
    global _pool
    with _pool_lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=True)
