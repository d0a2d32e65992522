"""Treaty audit exports: asked for by auditors, the secretariat or a member's delegate,
built in the background, recorded on the ledger.

An export is a ``ledger.export`` bundle (the entries and their proofs) with a report
inside: HTML and PDF for people, CSV files of the same tables for spreadsheets, and
``report/figures.json``. ``python -m consortium.audit.figures verify`` checks all of it offline.

Scope: auditors, the secretariat and superusers may export everything or what concerns
one member; a member's delegate exports what concerns its own member. A member's export
is a *selection*: the entries that concern the member (its keys' entries, entries that
name it, the agreements it is party to, and every governance decision), each with its
inclusion proof.
"""

from __future__ import annotations

import hashlib
import tempfile
import uuid
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from consortium.audit.models import AuditExport
from consortium.audit.report import access_log_window, report_files, report_tables
from consortium.audit.selectors import concerns, exporter_scope
from consortium.governance.changes import GovernanceError, secretariat_signer
from consortium.governance.models import Consortium, Member
from consortium.governance.selectors import seat_of
from ledger import export as bundles
from ledger import services as ledger
from ledger.core.note import verifier_key
from ledger.services import log_signer

EXPORTED = "audit.exported"
# A queued export older than this no longer holds up its requester's next one.
BUSY_FOR = timedelta(hours=6)
# A running export whose progress has not moved for this long is presumed abandoned (its
# worker gone): the next delivery of its task may take it over, and it no longer holds
# up its requester's next one.
STALE_AFTER = timedelta(minutes=10)


def audit_export_request(
    *,
    actor,
    member: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    first: int | None = None,
    end: int | None = None,
) -> AuditExport:
    """Ask for an export; it is built in the background (``consortium.audit_export``)."""
    scope = exporter_scope(actor)
    if scope is not None:
        if member not in (None, "", scope):
            raise GovernanceError(f"a delegate of {scope} exports what concerns {scope} only", 403)
        member = scope
    if member and not Member.objects.filter(code=member).exists():
        raise GovernanceError(f"no member {member}", 404)
    if (date_from or date_to) and (first is not None or end is not None):
        raise GovernanceError("give a period (from, to) or an index range (first, end), not both")
    if date_from and date_to and date_to < date_from:
        raise GovernanceError("the period ends before it starts")
    for name, value in (("first", first), ("end", end)):
        if value is not None and (not isinstance(value, int) or value < 0):
            raise GovernanceError(f"{name}: a non-negative index")
    today = timezone.now().astimezone(UTC).date()
    for name, day in (("date_from", date_from), ("date_to", date_to)):
        if day is not None and day > today:
            raise GovernanceError(f"{name}: {day} is after today ({today}, UTC)")
    size = ledger.tree_size()
    if first is not None and first >= size:
        raise GovernanceError(f"first: the log has {size} entries")
    if end is not None and (end <= (first or 0) or end > size):
        raise GovernanceError(f"end: after first and at most the log's size ({size})")
    # What the range holds is checked now: a period without entries is refused here, not
    # found empty by the task.
    _range(date_from, date_to, first, end, size)
    seat = seat_of(actor) if actor is not None else None
    with transaction.atomic():
        if actor is not None and actor.pk:
            # One export at a time per person: each reads and signs the whole range. The
            # person's row is locked so that two requests at once cannot both pass.
            get_user_model().objects.select_for_update().filter(pk=actor.pk).first()
            now = timezone.now()
            busy = (
                AuditExport.objects.filter(requested_by=actor)
                .filter(
                    Q(status="queued", created_at__gte=now - BUSY_FOR)
                    | Q(status="running", heartbeat_at__gte=now - STALE_AFTER)
                )
                .first()
            )
            if busy is not None:
                raise GovernanceError(
                    f"the export {busy.id} you asked for is still being "
                    f"built: follow it, then ask again",
                    409,
                )
        export = AuditExport.objects.create(
            id=uuid.uuid4(),
            requested_by=actor if actor is not None and actor.pk else None,
            requester=getattr(actor, "username", "") or "system",
            seat=seat,
            member_id=member or None,
            date_from=date_from,
            date_to=date_to,
            first=first,
            end=end,
            step="queued",
        )
        transaction.on_commit(lambda: _queue(export.id))
    return export


def _queue(export_id: uuid.UUID) -> None:
    from consortium.audit.tasks import audit_export
    from consortium.web import background

    try:
        background.later(
            audit_export, str(export_id), on_failure=lambda exc: _failed(export_id, exc)
        )
    except Exception as exc:  # an unreachable broker: say so on the export, not with a 500
        if getattr(audit_export.app.conf, "task_always_eager", False):
            raise  # in-process, the task records its own failure
        AuditExport.objects.filter(id=export_id, status=AuditExport.Status.QUEUED).update(
            status=AuditExport.Status.FAILED,
            step="failed",
            finished_at=timezone.now(),
            error=f"the task queue could not be reached: {exc}"[:2000],
        )


def _failed(export_id, exc: BaseException) -> None:
    """Record on an unfinished export a failure its build could not record itself."""
    AuditExport.objects.filter(
        id=export_id, status__in=[AuditExport.Status.QUEUED, AuditExport.Status.RUNNING]
    ).update(
        status=AuditExport.Status.FAILED,
        step="failed",
        finished_at=timezone.now(),
        error=str(exc)[:2000] or type(exc).__name__,
    )


# --- building --------------------------------------------------------------------------------


def _set(export: AuditExport, **fields) -> None:
    fields.setdefault("heartbeat_at", timezone.now())  # progress is the sign of life
    for k, v in fields.items():
        setattr(export, k, v)
    AuditExport.objects.filter(id=export.id).update(**fields)


def _claim(export_id) -> bool:
    """Take the export for this build: a queued one, or a running one abandoned by its
    worker. A second delivery of the task while the first is at work takes nothing."""
    now = timezone.now()
    return bool(
        AuditExport.objects.filter(id=export_id)
        .filter(
            Q(status=AuditExport.Status.QUEUED)
            | Q(status=AuditExport.Status.RUNNING, heartbeat_at__lt=now - STALE_AFTER)
        )
        .update(
            status=AuditExport.Status.RUNNING,
            started_at=now,
            heartbeat_at=now,
            error="",
            step="reading the report's tables",
            done=0,
            total=0,
        )
    )


def audit_export_build(export_id) -> AuditExport:
    """Build an export (the Celery task's body): the range, the report as of its end, the
    bundle, the file in storage, and the ``audit.exported`` entry."""
    if not _claim(export_id):
        return AuditExport.objects.get(id=export_id)  # done, failed, or being built
    export = AuditExport.objects.select_related("member").get(id=export_id)
    stored = None
    try:
        snapshot = connection.vendor == "postgresql" and not connection.in_atomic_block
        with transaction.atomic():
            if snapshot:
                # One snapshot: the tree's size, the tables it implies, what concerns the
                # member. (Called inside a transaction, as in tests, it reads that one.)
                with connection.cursor() as cur:
                    cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            size = ledger.tree_size()
            first, end = _range(export.date_from, export.date_to, export.first, export.end, size)
            tables = report_tables(
                member=export.member_id,
                first=first,
                end=end,
                period=access_log_window(first, end, size),
            )
            select = concerns(export.member_id) if export.member_id else None
            consortium_name = getattr(Consortium.objects.first(), "name", "")
        signer = secretariat_signer()
        ls = log_signer()
        meta = {
            "export": str(export.id),
            "origin": ls.name,
            "verifier_key": verifier_key(ls.name, ls.public_key),
            "consortium": consortium_name,
            "member": export.member_id,
            "first": first,
            "end": end,
            "as_of": size,
            "period": {
                "from": export.date_from.isoformat() if export.date_from else None,
                "to": export.date_to.isoformat() if export.date_to else None,
            },
            "requested_by": export.requester,
            "created": timezone.now().isoformat(),
        }
        _set(export, step="rendering the report")
        files = report_files(export, tables, first=first, end=end, as_of=size, meta=meta)
        _set(
            export, step="writing the entries", range_first=first, range_end=end, total=end - first
        )

        def progress(done: int, total: int) -> None:
            _set(export, done=done, total=total)

        with tempfile.NamedTemporaryFile(suffix=".zip", dir=settings.FILE_UPLOAD_TEMP_DIR) as tmp:
            built = bundles.build(
                tmp,
                export_id=str(export.id),
                first=first,
                end=end,
                select=select,
                extra_files=files,
                progress=progress,
                description={
                    "scope": {
                        "member": export.member_id,
                        "from": meta["period"]["from"],
                        "to": meta["period"]["to"],
                    },
                    "requested_by": export.requester,
                },
            )
            tmp.flush()
            _set(export, step="storing the bundle")
            tmp.seek(0)
            digest = hashlib.sha256()
            while chunk := tmp.read(1 << 20):
                digest.update(chunk)
            tmp.seek(0)
            name = f"audit-{export.id}.zip"
            stored = default_storage.save(f"exports/{name}", File(tmp, name=name))
            size = Path(tmp.name).stat().st_size
        with transaction.atomic(durable=True):
            appended = ledger.entry_append(
                signer=signer,
                kind=EXPORTED,
                payload={
                    "export": str(export.id),
                    "member": export.member_id,
                    "seat": str(export.seat_id) if export.seat_id else None,
                    "first": built.first,
                    "end": built.end,
                    "anchor": built.anchor,
                    "entries": built.entries,
                    "manifest_sha256": built.manifest_sha256,
                    "bundle_sha256": digest.hexdigest(),
                },
            )
            _set(
                export,
                status=AuditExport.Status.DONE,
                step="done",
                file=stored,
                size=size,
                bundle_sha256=digest.hexdigest(),
                manifest_sha256=built.manifest_sha256,
                anchor=built.anchor,
                entries=built.entries,
                recorded_in=appended.index,
                finished_at=timezone.now(),
                done=end - first,
            )
    except Exception as exc:
        if stored is not None:
            default_storage.delete(stored)  # a bundle that was not recorded is not kept
        _set(
            export,
            status=AuditExport.Status.FAILED,
            error=str(exc)[:2000],
            file="",
            finished_at=timezone.now(),
            step="failed",
        )
        raise
    return export


def _range(
    date_from: date | None, date_to: date | None, first: int | None, end: int | None, size: int
) -> tuple[int, int]:
    """The indexes ``first .. end-1`` a period or an index range holds (a period runs from
    the first entry integrated on ``date_from`` to the last integrated on ``date_to``)."""
    lo = first or 0
    hi = min(end or size, size)
    if date_from:
        lo = bundles.index_at(datetime.combine(date_from, time(), tzinfo=UTC))
    if date_to:
        hi = min(
            size,
            bundles.index_at(datetime.combine(date_to + timedelta(days=1), time(), tzinfo=UTC)),
        )
    if not lo < hi:
        raise GovernanceError("the export's range holds no entry")
    return lo, hi
