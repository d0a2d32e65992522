"""Background work of the log."""

from __future__ import annotations

from celery import shared_task
from django.core.cache import cache


@shared_task(name="ledger.publish_checkpoint", ignore_result=True)
def publish_checkpoint() -> int | None:
    """Sign a checkpoint at the current tree size if it has grown; return that size."""
    from ledger import checkpoints
    from ledger.models import Key

    # Clear the debounce flag first: appends committed from here on ask again.
    cache.delete("ledger:checkpoint-pending")
    if not Key.objects.filter(kind=Key.Kind.LOG).exists():
        return None
    cp = checkpoints.publish_checkpoint()
    return cp.tree_size if cp else None


@shared_task(name="ledger.verify_recent", ignore_result=True)
def verify_recent() -> bool:
    """Verify what was appended since the last good run (Celery beat runs it on
    ``LEDGER_VERIFY_SCHEDULE``); a failure is logged at CRITICAL and shown in the admin."""
    from django.conf import settings

    from ledger.models import Key
    from ledger.verify import verify_recent

    if not Key.objects.filter(kind=Key.Kind.LOG).exists():
        return True
    # In this process: Celery's worker processes cannot start a process pool of their own.
    run = verify_recent(workers=1, limit=getattr(settings, "LEDGER_VERIFY_BATCH", None))
    return run.ok


@shared_task(name="ledger.collect_cosignatures", ignore_result=True)
def collect_cosignatures(tree_size: int | None = None) -> dict[str, str]:
    """Send the checkpoint at ``tree_size`` to every registered witness (queued after
    each publication); without a size, the latest checkpoint to the witnesses that have
    not cosigned it yet (Celery beat, ``LEDGER_WITNESS_SCHEDULE``). Returns each
    witness's outcome."""
    from ledger.checkpoints import latest_checkpoint
    from ledger.cosign.collect import collect
    from ledger.models import Checkpoint

    if tree_size is None:
        cp = latest_checkpoint()
        return collect(cp, only_missing=True) if cp is not None else {}
    cp = Checkpoint.objects.filter(tree_size=tree_size).first()
    return collect(cp) if cp is not None else {}
