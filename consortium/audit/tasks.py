"""Background work of audits: building exports."""

from __future__ import annotations

import logging

from celery import shared_task

log = logging.getLogger(__name__)


# Acknowledged late and requeued if its worker dies: the build claims the export, so a
# second delivery while the first is at work does nothing.
@shared_task(
    name="consortium.audit_export", ignore_result=True, acks_late=True, reject_on_worker_lost=True
)
def audit_export(export_id: str) -> str:
    """Build an audit export; its progress is kept on the export's row."""
    from consortium.audit import exports as audit

    try:
        return audit.audit_export_build(export_id).status
    except Exception:
        # The export's row holds the error, for the admin and the API to show.
        log.exception("audit export %s failed", export_id)
        return "failed"
