"""Background work of the log."""

from __future__ import annotations

from celery import shared_task
from django.core.cache import cache


@shared_task(name="ledger.publish_checkpoint", ignore_result=True)
def publish_checkpoint() -> int | None:
    """Sign a checkpoint at the current tree size if it has grown; return that size."""
    from ledger import log
    from ledger.models import Key

    # Clear the debounce flag first: appends committed from here on ask again.
    cache.delete("ledger:checkpoint-pending")
    if not Key.objects.filter(kind=Key.Kind.LOG).exists():
        return None
    cp = log.publish_checkpoint()
    return cp.tree_size if cp else None
