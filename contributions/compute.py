"""Compute: SLURM accounting imports, recorded as the aggregates of one export, and the
facility's attestation of them.

Entry kinds, each with one applier:

``compute.imported`` (the facility's key: attested; or its operator's key: reported)
    ``{"import": uuid, "facility", "export_sha256", "lines", "allocations",
    "left_out": {reason: rows}, "contributions": [{contribution, member, accelerator,
    allocations, gpu_seconds, gpu_hours, start, end}]}``: the aggregates of one export,
    not one entry per job.
``compute.attested`` (the facility's key)
    ``{"import": uuid, "export_sha256"}``: the facility attests a reported import.
"""

from __future__ import annotations

import hashlib
import uuid
from decimal import Decimal

from django.db import IntegrityError, connection, transaction

from consortium.governance.changes import (
    GovernanceError,
    idempotency,
    is_secretariat,
)
from consortium.governance.models import Member
from consortium.governance.selectors import recording_for
from contributions.balances import tallied, tally_added
from contributions.common import key_of, zone
from contributions.facilities import facility_signer
from contributions.models import Contribution, CountedAllocation, Facility, SacctImport
from contributions.sacct import Reader, SacctError, gpu_hours
from ledger import services as ledger
from ledger.core.envelope import format_time, parse_time
from ledger.services import Appended, applier

UNMAPPED = "accounts not mapped to a member in good standing"
COUNTED_BEFORE = "counted by an earlier import of this facility"


def read_export(facility: Facility, data: bytes, *, fields=None, tz: str | None = None):
    """Read an export for ``facility``: the aggregates per member and accelerator type,
    with unmapped accounts left out. Raises GovernanceError (400) naming the bad line."""
    reader = Reader(
        fields=fields,
        tz=zone(tz or facility.timezone, "tz"),
        partitions=facility.partitions,
        default_accelerator=facility.default_accelerator,
        cluster=facility.code,
    )
    try:
        reading = reader.read(data)
    except SacctError as exc:
        raise GovernanceError(f"the export is malformed, nothing was recorded: {exc}") from exc
    members = set(Member.objects.filter(status=Member.Status.MEMBER).values_list("code", flat=True))
    unmapped = {a for a in reading.by_account if facility.accounts.get(a) not in members}
    for account in unmapped:
        # Counted once per allocation, however many accelerator types it used. The
        # names stay in this report: the ledger records only how many were left out.
        reading.unmapped[account] += reading.by_account[account]
        reading.left_out_counts[UNMAPPED] += reading.by_account[account]
    reading.drop([i for i, a in reading.allocs.items() if a[0] in unmapped])
    counted = _counted_before(facility, reading.allocs)
    if counted:
        reading.left_out_counts[COUNTED_BEFORE] += reading.drop(counted)
    reading.accounts = {a: facility.accounts[a] for a in reading.by_account}
    return reading


def allocation_key(identity: tuple[str, str, str]) -> str:
    """An allocation's (cluster, raw job id, submit) as a short hash."""
    return hashlib.sha256("|".join(identity).encode()).hexdigest()[:32]


def _remember(facility: Facility, import_id, keys: list[str]) -> None:
    """Record the allocations an import counted (one statement on PostgreSQL)."""
    if connection.vendor == "postgresql":
        table = CountedAllocation._meta.db_table
        with connection.cursor() as cur:
            cur.execute(
                f"INSERT INTO {table} (facility_id, key, import_id) "
                "SELECT %s, k, %s FROM unnest(%s::text[]) AS k",
                [facility.code, import_id, keys],
            )
    else:
        CountedAllocation.objects.bulk_create(
            (CountedAllocation(facility=facility, key=k, import_id=import_id) for k in keys),
            batch_size=5000,
        )


def _counted_before(facility: Facility, allocs: dict) -> list:
    """The allocations among ``allocs`` that an earlier import of ``facility`` counted."""
    keys = {allocation_key(i): i for i in allocs}
    if not CountedAllocation.objects.filter(facility=facility).exists():
        return []
    found: list[str] = []
    items = list(keys)
    if connection.vendor == "postgresql":
        table = CountedAllocation._meta.db_table
        with connection.cursor() as cur:
            cur.execute(
                f"SELECT key FROM {table} WHERE facility_id = %s AND key = ANY(%s::text[])",
                [facility.code, items],
            )
            found = [row[0] for row in cur.fetchall()]
    else:
        for start in range(0, len(items), 500):
            found += CountedAllocation.objects.filter(
                facility=facility, key__in=items[start : start + 500]
            ).values_list("key", flat=True)
    return [keys[k] for k in found]


def by_account(reading) -> list[dict]:
    """The reading's rows per account and accelerator type, with the member credited."""
    return [
        {
            "account": account,
            "member": reading.accounts[account],
            "accelerator": kind,
            "allocations": agg.allocations,
            "gpu_hours": str(agg.gpu_hours),
        }
        for (account, kind), agg in sorted(reading.aggregates.items())
    ]


def reading_summary(reading, rows: list[dict]) -> dict:
    """What an import (or its dry run) read: the export's hash and lines, the rows per
    account and per member, and what was left out and why (the API's answer and the
    command's report alike)."""
    return {
        "export_sha256": reading.sha256,
        "lines": reading.lines,
        "steps": reading.steps,
        "duplicates": reading.duplicates,
        "accounts": by_account(reading),
        "contributions": [
            {
                "member": r["member"],
                "accelerator": r["accelerator"],
                "allocations": r["allocations"],
                "gpu_hours": str(gpu_hours(r["gpu_seconds"])),
            }
            for r in rows
        ],
        "left_out": dict(sorted(reading.left_out_counts.items())),
        "unmapped_accounts": dict(sorted(reading.unmapped.items())),
        "left_out_examples": [
            {"line": x.line, "job": x.job, "reason": x.reason} for x in reading.left_out
        ],
    }


def contributions_of(reading, accounts: dict[str, str]) -> list[dict]:
    """The reading's aggregates per member and accelerator type (accounts of one member
    summed), in a stable order."""
    by_member: dict[tuple[str, str], dict] = {}
    for (account, kind), agg in sorted(reading.aggregates.items()):
        member = accounts[account]
        row = by_member.setdefault(
            (member, kind),
            {
                "member": member,
                "accelerator": kind,
                "allocations": 0,
                "gpu_seconds": 0,
                "start": agg.first_start,
                "end": agg.last_end,
            },
        )
        row["allocations"] += agg.allocations
        row["gpu_seconds"] += agg.gpu_seconds
        row["start"] = min(row["start"], agg.first_start)
        row["end"] = max(row["end"], agg.last_end)
    return [by_member[k] for k in sorted(by_member)]


def sacct_import(
    *,
    actor,
    facility: Facility,
    data: bytes,
    fields=None,
    tz: str | None = None,
    dry_run: bool = False,
    idempotency_key: str | None = None,
):
    """Import an accounting export: one ``compute.imported`` entry holding the aggregates
    and the export's hash. Signed by the facility's hosted key it is attested at once;
    otherwise it is reported, and counts once the facility attests it with its own key.
    The same export twice is refused; a malformed one records nothing. Returns
    ``(reading, rows, sacct_import or None)``."""
    signer, _ = facility_signer(actor, facility)
    reading = read_export(facility, data, fields=fields, tz=tz)
    rows = contributions_of(reading, facility.accounts)
    if dry_run:
        return reading, rows, None
    idem = idempotency(actor, idempotency_key)
    # The same export is the same request: a retry is known by the export's hash.
    done_entry = idem.entry()
    if done_entry is not None:
        if (
            done_entry.kind != "compute.imported"
            or done_entry.payload["export_sha256"] != reading.sha256
        ):
            raise GovernanceError("this Idempotency-Key was used for another request", 409)
        return reading, rows, SacctImport.objects.get(id=done_entry.payload["import"])
    done = SacctImport.objects.filter(facility=facility, export_sha256=reading.sha256).first()
    if done is not None:
        raise GovernanceError(
            f"this export was imported already (entry {done.recorded_in}): nothing was recorded",
            409,
        )
    if not rows:
        if reading.left_out_counts.get(COUNTED_BEFORE):
            raise GovernanceError(
                "every allocation in this export was counted by an earlier import", 409
            )
        raise GovernanceError("the export holds no GPU allocation of a mapped account", 400)
    import_id = idem.new_id()
    payload = {
        "import": str(import_id),
        "facility": facility.code,
        "export_sha256": reading.sha256,
        "lines": reading.lines,
        "allocations": sum(reading.by_account.values()),
        "left_out": dict(sorted(reading.left_out_counts.items())),
        "contributions": [
            {
                "contribution": str(uuid.uuid5(import_id, f"{r['member']}:{r['accelerator']}")),
                "member": r["member"],
                "accelerator": r["accelerator"],
                "allocations": r["allocations"],
                "gpu_seconds": r["gpu_seconds"],
                "gpu_hours": str(gpu_hours(r["gpu_seconds"])),
                "start": format_time(r["start"]),
                "end": format_time(r["end"]),
            }
            for r in rows
        ],
    }
    with transaction.atomic(durable=True):
        if SacctImport.objects.filter(facility=facility, export_sha256=reading.sha256).exists():
            raise GovernanceError("this export was imported already: nothing was recorded", 409)
        ledger.entry_append(
            signer=signer, entry_id=idem.entry_id, kind="compute.imported", payload=payload
        )
        try:
            with transaction.atomic():
                _remember(facility, import_id, [allocation_key(i) for i in reading.allocs])
        except IntegrityError as exc:
            # An overlapping export was imported at the same moment: write nothing.
            raise GovernanceError(
                "an import listing some of these jobs was recorded meanwhile: read the export "
                "again",
                409,
            ) from exc
    return reading, rows, SacctImport.objects.get(id=import_id)


@applier("compute.imported")
def apply_imported(entry: Appended) -> None:
    p = entry.payload
    facility = Facility.objects.filter(code=p["facility"]).first()
    key = key_of(entry.author)
    if facility is None or key is None:
        return
    by_facility = key.kind == "facility" and key.owner == facility.code
    by_operator = key.kind == "member" and key.owner == facility.operator_id
    if not (by_facility or by_operator or is_secretariat(key)):
        return
    if SacctImport.objects.filter(facility=facility, export_sha256=p["export_sha256"]).exists():
        return  # the same export twice counts once
    if SacctImport.objects.filter(id=uuid.UUID(p["import"])).exists():
        return
    named = {c["member"] for c in p["contributions"]}
    ids = [uuid.UUID(c["contribution"]) for c in p["contributions"]]
    if named - set(Member.objects.filter(code__in=named).values_list("code", flat=True)):
        return  # credits a member the consortium does not know: without effect
    if len(set(ids)) != len(ids) or Contribution.objects.filter(id__in=ids).exists():
        return
    attested = entry.index if by_facility else None
    SacctImport.objects.create(
        id=uuid.UUID(p["import"]),
        facility=facility,
        export_sha256=p["export_sha256"],
        lines=p["lines"],
        allocations=p["allocations"],
        left_out=p["left_out"],
        recorded_in=entry.index,
        attested_in=attested,
    )
    made = Contribution.objects.bulk_create(
        Contribution(
            id=uuid.UUID(c["contribution"]),
            kind=Contribution.Kind.COMPUTE,
            member_id=c["member"],
            facility=facility,
            import_id=uuid.UUID(p["import"]),
            state=Contribution.State.COUNTED if attested else Contribution.State.REPORTED,
            recorded_in=entry.index,
            recorded_at=entry.integrated_time,
            period_start=parse_time(c["start"]),
            period_end=parse_time(c["end"]),
            delivered_on=parse_time(c["end"]).date(),
            accelerator=c["accelerator"],
            allocations=c["allocations"],
            gpu_seconds=c["gpu_seconds"],
            gpu_hours=Decimal(c["gpu_hours"]),
            evidence_sha256=p["export_sha256"],
            attested_in=attested,
        )
        for c in p["contributions"]
    )
    tally_added(made)


@applier("compute.attested")
def apply_attested(entry: Appended) -> None:
    p = entry.payload
    imported = SacctImport.objects.filter(id=uuid.UUID(p["import"])).first()
    key = key_of(entry.author)
    if imported is None or imported.attested_in is not None or key is None:
        return
    if (key.kind, key.owner) != ("facility", imported.facility_id):
        return
    if p["export_sha256"] != imported.export_sha256:
        return
    SacctImport.objects.filter(id=imported.id).update(attested_in=entry.index)
    # Every contribution of the import is attested; those held by a dispute stay held,
    # and count once it is dismissed.
    Contribution.objects.filter(import_id=imported.id).update(attested_in=entry.index)
    with tallied(Contribution.objects.filter(import_id=imported.id)):
        Contribution.objects.filter(
            import_id=imported.id, state=Contribution.State.REPORTED
        ).update(state=Contribution.State.COUNTED)


def import_attest(
    *, actor, sacct_import: SacctImport, idempotency_key: str | None = None
) -> SacctImport:
    """The facility attests a reported import with its hosted key (its operator's
    recorder or signatory acts). A facility holding its own key submits compute.attested
    signed by it instead."""
    facility = sacct_import.facility
    signer, attests = facility_signer(actor, facility)
    if not attests:
        raise GovernanceError(
            "only the facility attests, with its own key: its operator's delegates act for a "
            "hosted key; a facility holding its key submits compute.attested signed by it",
            403,
        )
    idem = idempotency(actor, idempotency_key)
    payload = {"import": str(sacct_import.id), "export_sha256": sacct_import.export_sha256}
    if idem.earlier("compute.attested", payload):
        sacct_import.refresh_from_db()
        return sacct_import
    with transaction.atomic(durable=True):
        locked = SacctImport.objects.select_for_update().get(id=sacct_import.id)
        if locked.attested_in is not None:
            raise GovernanceError("this import is attested already", 409)
        ledger.entry_append(
            signer=signer, kind="compute.attested", entry_id=idem.entry_id, payload=payload
        )
    sacct_import.refresh_from_db()
    return sacct_import


# --- entries signed by their authors' own keys (POST /api/v1/ledger/entries) -------------------


@ledger.accepts("compute.attested")
def _submitted_attestation(signed, key, submitter) -> None:
    payload = signed.envelope["payload"]
    if set(payload) != {"import", "export_sha256"}:
        raise ledger.Refused("compute.attested payload is {import, export_sha256}")
    try:
        imported = SacctImport.objects.filter(id=uuid.UUID(str(payload["import"]))).first()
    except ValueError:
        imported = None
    if imported is None:
        raise ledger.Refused("no such import", 404)
    facility = imported.facility
    if (key.kind, key.owner) != ("facility", facility.code):
        raise ledger.Refused(f"only {facility.code}'s key attests its imports", 403)
    if recording_for(submitter) != facility.operator_id:
        raise ledger.Refused(f"you may not act for {facility.code}", 403)
    if imported.attested_in is not None:
        raise ledger.Refused("this import is attested already", 409)
    if payload["export_sha256"] != imported.export_sha256:
        raise ledger.Refused("export_sha256 is not the imported export's", 409)
