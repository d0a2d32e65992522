"""Background work of the web layer: forgetting old idempotent answers."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="consortium.prune_idempotent_responses", ignore_result=True)
def prune_idempotent_responses() -> int:
    """Forget the kept answers of writes older than IDEMPOTENCY_KEEP_DAYS."""
    from consortium.web import idempotency

    return idempotency.prune()
