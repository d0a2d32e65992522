"""Background work of the access gate: re-verifying stored checkpoint files."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="consortium.verify_checkpoints", ignore_result=True)
def verify_checkpoints(digest: str | None = None) -> dict[str, list[str]]:
    """Re-hash stored checkpoint files (one checkpoint, or every published one); block
    any whose files no longer match their manifest."""
    from consortium.access import checkpoints

    return checkpoints.checkpoints_verify(digest)
