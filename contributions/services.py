"""Contributions on the ledger: facilities, compute (imported from SLURM accounting and
attested by the facility's key), data, funds, and disputes.

Entry kinds, each with one applier:

``facility.registered`` (the secretariat key)
    ``{"facility": {code, name, operator, country, timezone, default_accelerator,
    partitions, accounts}}``; the log key registers the facility's key beside it.
``facility.updated`` (the facility's key, or the secretariat's)
    ``{"facility": code, "changes": {timezone?, default_accelerator?, partitions?,
    accounts?}}``: the tables the facility keeps (accounts to members, partitions to
    accelerator types).
``compute.imported`` (the facility's key: attested; or its operator's key: reported)
    ``{"import": uuid, "facility", "export_sha256", "lines", "allocations",
    "left_out": {reason: rows}, "contributions": [{contribution, member, accelerator,
    allocations, gpu_seconds, gpu_hours, start, end}]}``: the aggregates of one export,
    not one entry per job.
``compute.attested`` (the facility's key)
    ``{"import": uuid, "export_sha256"}``: the facility attests a reported import.
``data.contributed`` (the member's key)
    ``{"contribution": uuid, "dataset": {name, description, manifest_sha256, size_bytes,
    files, tokens, records, licence, duo: {permission, modifiers}, residency,
    access_mode}}``
``funds.contributed`` (the member's key)
    ``{"contribution": uuid, "amount": decimal, "currency": ISO 4217, "date", "reference"}``:
    pending until the treasurer confirms it.
``funds.confirmed`` (the treasurer's key: the secretariat's, or the member the treaty
names as ``treasurer``; the secretariat's for the treasurer's own payments)
    ``{"contribution": uuid, "amount", "currency", "date"}``: the payment as the
    receiving side's books show it; those figures count.
``funds.rejected`` (the same key)
    ``{"contribution": uuid, "reason"}``: the payment is not in the books; it never counts.
``contribution.disputed`` (the key of a member bound with the contribution's member by an
agreement in force that shares cost)
    ``{"dispute": uuid, "contribution": uuid, "reason"}``: one open dispute per
    contribution; the contribution keeps its state (and counts, if counted) meanwhile.
``contribution.resolved`` (the secretariat key)
    ``{"dispute": uuid, "outcome": "upheld" | "dismissed", "resolution"}``: an upheld
    dispute voids the contribution; a dismissed one leaves it as it was.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db import IntegrityError, connection, transaction

from consortium.governance.agreements import effective_dates
from consortium.governance.members import (
    SECRETARIAT_OWNER,
    GovernanceError,
    acting_for,
    acting_signer,
    idempotent_entry_id,
    keyed_uuid,
    member_signer,
    recording_for,
    replay_of,
    secretariat_signer,
)
from consortium.governance.models import Agreement, AgreementParty, Member
from consortium.governance.terms import check_data_use, currency_code, decimal_string
from contributions.licences import LicenceError, canonical
from contributions.models import (
    Contribution,
    CountedAllocation,
    Dispute,
    Facility,
    SacctImport,
)
from contributions.sacct import Reader, SacctError, gpu_hours
from ledger import services as ledger
from ledger import submissions
from ledger.core.envelope import format_time, parse_time
from ledger.keys import HostedKeyError, hosted_signer, log_signer
from ledger.log import Appended, applier
from ledger.models import Key
from ledger.replay import projection

for model in (Facility, SacctImport, Contribution, Dispute):
    projection(model)

SLUG_RE = re.compile(r"[a-z0-9][a-z0-9-]{1,31}")
TAG_RE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
SHA256_RE = re.compile(r"[0-9a-f]{64}")
MAX_TEXT = 2000
UNMAPPED = "accounts not mapped to a member in good standing"
COUNTED_BEFORE = "counted by an earlier import of this facility"


# --- who signs ----------------------------------------------------------------------------------


def _key_of(author: str) -> Key | None:
    return Key.objects.filter(fingerprint=author).first()


def _is_secretariat(key: Key | None) -> bool:
    return key is not None and key.kind == "service" and key.owner == SECRETARIAT_OWNER


def facility_key(facility: Facility) -> Key | None:
    """The facility's valid key (the newest, if it has several)."""
    return (
        Key.objects.filter(kind="facility", owner=facility.code, revoked_at__isnull=True)
        .order_by("-registered_in")
        .first()
    )


def _recorder(actor) -> str:
    member = recording_for(actor)
    if member is None:
        raise GovernanceError("only a member's recorder or signatory records contributions", 403)
    return member


# --- facilities ---------------------------------------------------------------------------------


def _zone(value, path: str) -> str:
    if not isinstance(value, str):
        raise GovernanceError(f"{path}: an IANA time zone such as Europe/Helsinki")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise GovernanceError(f"{path}: {value!r} is not an IANA time zone") from exc
    return value


def _tag(value, path: str) -> str:
    if not isinstance(value, str) or not TAG_RE.fullmatch(value):
        raise GovernanceError(f"{path}: an accelerator type such as h100 or a100_3g.20gb")
    return value


def _partitions(value) -> dict:
    if not isinstance(value, dict):
        raise GovernanceError("partitions: an object {partition: accelerator type}")
    for name, kind in value.items():
        if not name or len(name) > 64 or "|" in name:
            raise GovernanceError("partitions: partition names are 1-64 characters")
        _tag(kind, f"partitions.{name}")
    return value


def _accounts(value) -> dict:
    if not isinstance(value, dict):
        raise GovernanceError("accounts: an object {account: member code}")
    known = set(Member.objects.filter(status=Member.Status.MEMBER).values_list("code", flat=True))
    for account, member in value.items():
        if not account or len(account) > 64 or "|" in account:
            raise GovernanceError("accounts: account names are 1-64 characters, without |")
        if not isinstance(member, str) or member not in known:
            raise GovernanceError(
                f"accounts.{account}: {member!r} is not a member in good standing"
            )
    return value


def facility_record(
    *,
    code,
    name,
    operator,
    country,
    timezone="UTC",
    default_accelerator,
    partitions=None,
    accounts=None,
) -> dict:
    """A checked facility record for a ledger payload."""
    if not isinstance(code, str) or not SLUG_RE.fullmatch(code):
        raise GovernanceError("code: 2-32 lowercase letters, digits and -")
    if not isinstance(name, str) or not 0 < len(name) <= 200:
        raise GovernanceError("name: 1-200 characters")
    if not Member.objects.filter(code=operator).exists():
        raise GovernanceError(f"operator: {operator!r} is not a member")
    if not isinstance(country, str) or not re.fullmatch(r"[A-Z]{2}", country):
        raise GovernanceError("country: an ISO 3166-1 alpha-2 code such as FI")
    return {
        "code": code,
        "name": name,
        "operator": operator,
        "country": country,
        "timezone": _zone(timezone, "timezone"),
        "default_accelerator": _tag(default_accelerator, "default_accelerator"),
        "partitions": _partitions(partitions or {}),
        "accounts": _accounts(accounts or {}),
    }


@applier("facility.registered")
def apply_facility_registered(entry: Appended) -> None:
    f = entry.payload["facility"]
    if (
        not _is_secretariat(_key_of(entry.author))
        or Facility.objects.filter(code=f["code"]).exists()
    ):
        return
    Facility.objects.create(
        code=f["code"],
        name=f["name"],
        operator_id=f["operator"],
        country=f["country"],
        timezone=f["timezone"],
        default_accelerator=f["default_accelerator"],
        partitions=f["partitions"],
        accounts=f["accounts"],
        registered_in=entry.index,
        changed_in=entry.index,
    )


@applier("facility.updated")
def apply_facility_updated(entry: Appended) -> None:
    p = entry.payload
    key = _key_of(entry.author)
    facility = Facility.objects.filter(code=p["facility"]).first()
    if facility is None or key is None:
        return
    if not (_is_secretariat(key) or (key.kind == "facility" and key.owner == facility.code)):
        return
    Facility.objects.filter(code=facility.code).update(changed_in=entry.index, **p["changes"])


def facility_register(
    *, actor, record: dict, public_key: bytes | None = None, idempotency_key: str | None = None
) -> Facility:
    """Register a facility and its key (the secretariat; ``actor`` ``None`` is the
    operator's console). Without ``public_key`` the facility's key is hosted here."""
    if actor is not None and acting_for(actor) is not None:
        raise GovernanceError("the secretariat registers facilities", 403)
    fields = {
        "code",
        "name",
        "operator",
        "country",
        "timezone",
        "default_accelerator",
        "partitions",
        "accounts",
    }
    if not isinstance(record, dict) or set(record) - fields:
        raise GovernanceError(f"a facility is {{{', '.join(sorted(fields))}}}")
    try:
        record = facility_record(**record)
    except TypeError as exc:
        raise GovernanceError(
            f"a facility needs {', '.join(sorted(fields - {'timezone', 'partitions', 'accounts'}))}"
        ) from exc
    entry_id = idempotent_entry_id(actor, idempotency_key) if idempotency_key else None
    if replay_of(entry_id, "facility.registered", {"facility": record}):
        return Facility.objects.get(code=record["code"])
    with transaction.atomic(durable=True):
        if Facility.objects.filter(code=record["code"]).exists():
            raise GovernanceError(f"facility {record['code']} exists already", 409)
        ledger.entry_append(
            signer=secretariat_signer(),
            kind="facility.registered",
            entry_id=entry_id,
            payload={"facility": record},
        )
        ledger.key_register(
            signer=log_signer(),
            kind="facility",
            owner=record["code"],
            name=f"facility-{record['code']}",
            public_key=public_key,
        )
    return Facility.objects.get(code=record["code"])


def _facility_signer(actor, facility: Facility):
    """Who acts for a facility, with which key, and whether that key attests: the
    facility's operator's recorders and signatories sign with the facility's hosted key
    (attesting), or with the operator's key when the facility holds its key itself
    (reporting, for the facility to attest); the secretariat signs with its own key
    (reporting), as does the operator at the console (``actor`` ``None``)."""
    if actor is None or acting_for(actor) is None:
        return secretariat_signer(), False
    if recording_for(actor) != facility.operator_id:
        raise GovernanceError(
            f"only the delegates of {facility.operator_id} act for {facility.code}", 403
        )
    key = facility_key(facility)
    if key is None or key.custody != Key.Custody.HOSTED:
        return member_signer(facility.operator_id), False
    try:
        return hosted_signer(key.fingerprint), True
    except HostedKeyError as exc:
        raise GovernanceError(str(exc), 409) from exc


def facility_update(
    *, actor, facility: Facility, changes: dict, idempotency_key: str | None = None
) -> Facility:
    """Change the tables the facility keeps (accounts, partitions, zone, default type)."""
    allowed = {"timezone", "default_accelerator", "partitions", "accounts"}
    if not isinstance(changes, dict) or not changes or set(changes) - allowed:
        raise GovernanceError(f"changes: some of {', '.join(sorted(allowed))}")
    checks = {
        "timezone": lambda v: _zone(v, "timezone"),
        "partitions": _partitions,
        "accounts": _accounts,
        "default_accelerator": lambda v: _tag(v, "default_accelerator"),
    }
    changes = {k: checks[k](v) for k, v in changes.items()}
    if acting_for(actor) not in (None, facility.operator_id):
        # Which member an account credits decides what imports attest: a signatory's
        # decision, not a recorder's.
        raise GovernanceError(
            f"only the secretariat or a signatory of {facility.operator_id} changes its tables", 403
        )
    signer, attests = _facility_signer(actor, facility)
    if not attests and acting_for(actor) is not None:
        raise GovernanceError("the facility's key is external: its own systems sign changes", 403)
    entry_id = idempotent_entry_id(actor, idempotency_key) if idempotency_key else None
    payload = {"facility": facility.code, "changes": changes}
    if not replay_of(entry_id, "facility.updated", payload):
        with transaction.atomic(durable=True):
            ledger.entry_append(
                signer=signer, kind="facility.updated", entry_id=entry_id, payload=payload
            )
    return Facility.objects.get(code=facility.code)


# --- compute: SLURM accounting imports ----------------------------------------------------------


def read_export(facility: Facility, data: bytes, *, fields=None, tz: str | None = None):
    """Read an export for ``facility``: the aggregates per member and accelerator type,
    with unmapped accounts left out. Raises GovernanceError (400) naming the bad line."""
    reader = Reader(
        fields=fields,
        tz=_zone(tz or facility.timezone, "tz"),
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
    signer, _ = _facility_signer(actor, facility)
    reading = read_export(facility, data, fields=fields, tz=tz)
    rows = contributions_of(reading, facility.accounts)
    if dry_run:
        return reading, rows, None
    entry_id = idempotent_entry_id(actor, idempotency_key) if idempotency_key else None
    if entry_id is not None:
        from ledger.models import Entry

        done_entry = Entry.objects.filter(entry_id=entry_id).first()
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
    import_id = keyed_uuid(entry_id)
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
            signer=signer, entry_id=entry_id, kind="compute.imported", payload=payload
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
    key = _key_of(entry.author)
    if facility is None or key is None:
        return
    by_facility = key.kind == "facility" and key.owner == facility.code
    by_operator = key.kind == "member" and key.owner == facility.operator_id
    if not (by_facility or by_operator or _is_secretariat(key)):
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
    Contribution.objects.bulk_create(
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


@applier("compute.attested")
def apply_attested(entry: Appended) -> None:
    p = entry.payload
    imported = SacctImport.objects.filter(id=uuid.UUID(p["import"])).first()
    key = _key_of(entry.author)
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
    Contribution.objects.filter(import_id=imported.id, state=Contribution.State.REPORTED).update(
        state=Contribution.State.COUNTED
    )


def import_attest(
    *, actor, sacct_import: SacctImport, idempotency_key: str | None = None
) -> SacctImport:
    """The facility attests a reported import with its hosted key (its operator's
    recorder or signatory acts). A facility holding its own key submits compute.attested
    signed by it instead."""
    facility = sacct_import.facility
    signer, attests = _facility_signer(actor, facility)
    if not attests:
        raise GovernanceError(
            "only the facility attests, with its own key: its operator's delegates act for a "
            "hosted key; a facility holding its key submits compute.attested signed by it",
            403,
        )
    entry_id = idempotent_entry_id(actor, idempotency_key) if idempotency_key else None
    payload = {"import": str(sacct_import.id), "export_sha256": sacct_import.export_sha256}
    if replay_of(entry_id, "compute.attested", payload):
        sacct_import.refresh_from_db()
        return sacct_import
    with transaction.atomic(durable=True):
        locked = SacctImport.objects.select_for_update().get(id=sacct_import.id)
        if locked.attested_in is not None:
            raise GovernanceError("this import is attested already", 409)
        ledger.entry_append(
            signer=signer, kind="compute.attested", entry_id=entry_id, payload=payload
        )
    sacct_import.refresh_from_db()
    return sacct_import


# --- data and funds ----------------------------------------------------------------------------


def _text(value, path: str, limit: int = MAX_TEXT, *, required: bool = True) -> str:
    if not isinstance(value, str) or (required and not value) or len(value) > limit:
        raise GovernanceError(f"{path}: text of {'1' if required else '0'}-{limit} characters")
    return value


def _count(value, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**53:
        raise GovernanceError(f"{path}: a whole number, 0 or more")
    return value


def licence(value, path: str = "licence") -> str:
    """An SPDX licence id or expression, in its canonical form (MIT, CC-BY-4.0,
    LicenseRef-NLOD-2.0, GPL-2.0-only WITH Classpath-exception-2.0, ...)."""
    if not isinstance(value, str) or not value or len(value) > 200:
        raise GovernanceError(f"{path}: an SPDX licence id such as CC-BY-4.0")
    try:
        written = canonical(value)
    except LicenceError as exc:
        raise GovernanceError(f"{path}: {exc}") from exc
    if written != value:
        raise GovernanceError(f"{path}: write it as SPDX does: {written}")
    return value


def dataset_record(dataset) -> dict:
    """A checked dataset description for ``data.contributed``."""
    fields = {
        "name",
        "description",
        "manifest_sha256",
        "size_bytes",
        "files",
        "tokens",
        "records",
        "licence",
        "duo",
        "residency",
        "access_mode",
    }
    if not isinstance(dataset, dict):
        raise GovernanceError("dataset: an object")
    optional = {"records", "tokens", "residency"}
    missing, unknown = fields - optional - set(dataset), set(dataset) - fields
    if missing:
        raise GovernanceError(f"dataset: missing {', '.join(sorted(missing))}")
    if unknown:
        raise GovernanceError(f"dataset: unknown field {', '.join(sorted(unknown))}")
    _text(dataset["name"], "dataset.name", 200)
    _text(dataset["description"], "dataset.description", required=False)
    digest = dataset["manifest_sha256"]
    if not isinstance(digest, str) or not SHA256_RE.fullmatch(digest):
        raise GovernanceError("dataset.manifest_sha256: 64 lowercase hex digits")
    for field in ("size_bytes", "files"):
        _count(dataset[field], f"dataset.{field}")
    if "tokens" not in dataset and "records" not in dataset:
        raise GovernanceError("dataset: give its tokens or its records (or both)")
    for field in ("tokens", "records"):
        if field in dataset:
            _count(dataset[field], f"dataset.{field}")
    licence(dataset["licence"], "dataset.licence")
    duo = dataset["duo"]
    if not isinstance(duo, dict) or set(duo) != {"permission", "modifiers"}:
        raise GovernanceError("dataset.duo: {permission, modifiers}")
    use = {**duo, "access_mode": dataset["access_mode"]}
    if "residency" in dataset:
        use["residency"] = dataset["residency"]
    check_data_use(use, "dataset", "dataset.duo")
    return dataset


def _new_contribution(actor, idempotency_key, kind: str, payload: dict):
    """Append a member's contribution entry, idempotently; return the contribution."""
    member = _recorder(actor)
    signer = member_signer(member)
    entry_id = idempotent_entry_id(actor, idempotency_key) if idempotency_key else None
    payload = {"contribution": str(keyed_uuid(entry_id)), **payload}
    if replay_of(entry_id, kind, {**payload}):
        return Contribution.objects.get(id=payload["contribution"])
    with transaction.atomic(durable=True):
        ledger.entry_append(signer=signer, entry_id=entry_id, kind=kind, payload=payload)
    return Contribution.objects.get(id=payload["contribution"])


def data_contribute(*, actor, dataset: dict, idempotency_key: str | None = None) -> Contribution:
    """Record a dataset the actor's member contributes (its recorder or signatory): known
    by its manifest hash; its bytes need never leave the member."""
    return _new_contribution(
        actor, idempotency_key, "data.contributed", {"dataset": dataset_record(dataset)}
    )


def check_funds(amount, currency, date_paid, reference) -> None:
    """An amount paid: an exact decimal (at most 6 places), ISO 4217, a past day."""
    value = decimal_string(amount, "amount", positive=True)
    if value.as_tuple().exponent < -6 or value >= 10**12:
        raise GovernanceError("amount: at most 6 decimal places, under 10^12")
    currency_code(currency, "currency")
    if currency in NOT_PAID_IN:
        raise GovernanceError(
            f"currency: {currency} ({NOT_PAID_IN[currency]}) is not a currency funds are paid "
            "in: give the currency paid"
        )
    try:
        day = date.fromisoformat(date_paid) if isinstance(date_paid, str) else None
    except ValueError:
        day = None
    if day is None or not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", date_paid):
        raise GovernanceError("date: the day paid, YYYY-MM-DD")
    if day > datetime.now(UTC).date():
        raise GovernanceError("date: the day paid is not in the future")
    _text(reference, "reference", 200, required=False)


# ISO 4217 codes that name no currency anyone pays in: the X-codes for precious metals,
# bond-market units, special drawing rights, testing and "no currency", and the fund codes
# (units of account and indexing) that stand beside a country's currency.
NOT_PAID_IN = {
    "XXX": "no currency",
    "XTS": "a code for testing",
    "XAU": "gold",
    "XAG": "silver",
    "XPT": "platinum",
    "XPD": "palladium",
    "XBA": "a bond-market unit",
    "XBB": "a bond-market unit",
    "XBC": "a bond-market unit",
    "XBD": "a bond-market unit",
    "XDR": "special drawing rights",
    "XSU": "the Sucre, a unit of account",
    "XUA": "the ADB unit of account",
    "BOV": "a fund code",
    "CHE": "a fund code",
    "CHW": "a fund code",
    "CLF": "a fund code",
    "COU": "a fund code",
    "MXV": "a fund code",
    "USN": "a fund code",
    "UYI": "a fund code",
    "UYW": "a fund code",
}


def check_paid_under_agreement(member: str, day: str) -> None:
    """Funds count under the agreements that share the cost (treaties, compute pledges):
    the day paid must fall within the effective period of one that binds ``member`` and
    has entered into force (from its first day to its last, or today)."""
    paid = date.fromisoformat(day)
    today = datetime.now(UTC).date()
    periods = []
    bound = AgreementParty.objects.filter(
        member_id=member,
        signed_in__isnull=False,
        agreement__kind__in=(Agreement.Kind.TREATY, Agreement.Kind.COMPUTE_PLEDGE),
        agreement__in_force_in__isnull=False,
    ).select_related("agreement")
    for party in bound:
        start, until = effective_dates(party.agreement)
        periods.append((start, min(until, today) if until else today))
        if start <= paid <= periods[-1][1]:
            return
    if not periods:
        raise GovernanceError(
            f"date: {member} is bound by no treaty or compute pledge in force, and funds are "
            "paid under one"
        )
    lives = ", ".join(f"{a} to {b}" for a, b in sorted(periods))
    raise GovernanceError(
        f"date: {day} is outside the life of the agreements {member} pays under ({lives})"
    )


def funds_contribute(
    *,
    actor,
    amount: str,
    currency: str,
    date_paid: str,
    reference: str = "",
    idempotency_key: str | None = None,
) -> Contribution:
    """Record funds the actor's member paid (exact decimal, ISO 4217, the day paid within
    the life of an agreement it pays under)."""
    check_funds(amount, currency, date_paid, reference)
    check_paid_under_agreement(_recorder(actor), date_paid)
    return _new_contribution(
        actor,
        idempotency_key,
        "funds.contributed",
        {"amount": amount, "currency": currency, "date": date_paid, "reference": reference},
    )


def _by_member_key(entry: Appended) -> str | None:
    key = _key_of(entry.author)
    return key.owner if key is not None and key.kind == "member" else None


@applier("data.contributed")
def apply_data(entry: Appended) -> None:
    member = _by_member_key(entry)
    if member is None or Contribution.objects.filter(id=entry.payload["contribution"]).exists():
        return
    d = entry.payload["dataset"]
    Contribution.objects.create(
        id=uuid.UUID(entry.payload["contribution"]),
        kind=Contribution.Kind.DATA,
        member_id=member,
        state=Contribution.State.COUNTED,
        recorded_in=entry.index,
        recorded_at=entry.integrated_time,
        dataset=d,
        tokens=d.get("tokens"),
        delivered_on=parse_time(entry.integrated_time).date(),
    )


@applier("funds.contributed")
def apply_funds(entry: Appended) -> None:
    member = _by_member_key(entry)
    if member is None or Contribution.objects.filter(id=entry.payload["contribution"]).exists():
        return
    p = entry.payload
    Contribution.objects.create(
        id=uuid.UUID(p["contribution"]),
        kind=Contribution.Kind.FUNDS,
        member_id=member,
        state=Contribution.State.PENDING,
        recorded_in=entry.index,
        recorded_at=entry.integrated_time,
        amount=Decimal(p["amount"]),
        amount_micros=int(Decimal(p["amount"]) * 1_000_000),
        currency=p["currency"],
        date=date.fromisoformat(p["date"]),
        delivered_on=date.fromisoformat(p["date"]),
    )


# --- funds: the treasurer's confirmation ------------------------------------------------------


def treasurer_of(member: str) -> str:
    """Who confirms ``member``'s payments against its books: the ``treasurer`` named by
    the latest treaty in force that binds ``member`` (a member code, or the secretariat,
    the default), and the secretariat for the treasurer's own payments."""
    treaty = (
        Agreement.objects.filter(
            kind=Agreement.Kind.TREATY,
            state=Agreement.State.IN_FORCE,
            parties__member_id=member,
            parties__signed_in__isnull=False,
            parties__withdrawn_in__isnull=True,
        )
        .order_by("-in_force_in")
        .first()
    )
    named = (treaty.terms.get("treasurer") if treaty is not None else None) or SECRETARIAT_OWNER
    return SECRETARIAT_OWNER if named == member else named


def _by_treasurer(author: str, member: str) -> bool:
    """Is ``author`` the key of ``member``'s treasurer (see ``treasurer_of``)?"""
    key = _key_of(author)
    treasurer = treasurer_of(member)
    if treasurer == SECRETARIAT_OWNER:
        return _is_secretariat(key)
    return key is not None and (key.kind, key.owner) == ("member", treasurer)


def _treasurer_signer(actor, contribution: Contribution):
    """The key the actor confirms ``contribution`` with, if it acts for its treasurer."""
    if contribution.kind != Contribution.Kind.FUNDS:
        raise GovernanceError(
            "only funds await a treasurer's confirmation (compute is attested by its facility)",
            409,
        )
    treasurer = treasurer_of(contribution.member_id)
    if treasurer == SECRETARIAT_OWNER:
        if acting_for(actor) is not None:
            raise GovernanceError(
                f"the secretariat confirms {contribution.member_id}'s payments against its books",
                403,
            )
        return secretariat_signer()
    if recording_for(actor) != treasurer:
        raise GovernanceError(
            f"{treasurer}, the treasurer the treaty names, confirms {contribution.member_id}'s "
            "payments against its books: its recorders or signatories",
            403,
        )
    return member_signer(treasurer)


def _settle(actor, contribution: Contribution, kind: str, payload: dict, idempotency_key):
    signer = _treasurer_signer(actor, contribution)
    entry_id = idempotent_entry_id(actor, idempotency_key) if idempotency_key else None
    if not replay_of(entry_id, kind, payload):
        with transaction.atomic(durable=True):
            locked = Contribution.objects.select_for_update().get(id=contribution.id)
            if locked.state != Contribution.State.PENDING:
                done = "confirmed" if locked.state == Contribution.State.COUNTED else locked.state
                raise GovernanceError(
                    f"the payment is {done}: only a pending payment is confirmed or rejected",
                    409,
                )
            ledger.entry_append(signer=signer, entry_id=entry_id, kind=kind, payload=payload)
    contribution.refresh_from_db()
    return contribution


def funds_confirm(
    *,
    actor,
    contribution: Contribution,
    amount: str | None = None,
    currency: str | None = None,
    date_paid: str | None = None,
    idempotency_key: str | None = None,
) -> Contribution:
    """The treasurer confirms a pending payment against its own books (the secretariat,
    or the member the treaty names as treasurer): the amount, currency and day as
    received (by default, as recorded) count from then on."""
    _treasurer_signer(actor, contribution)  # refused before anything else is read
    recorded = _recorded_funds(contribution)
    amount = recorded["amount"] if amount is None else amount
    currency = recorded["currency"] if currency is None else currency
    date_paid = recorded["date"] if date_paid is None else date_paid
    check_funds(amount, currency, date_paid, "")
    payload = {
        "contribution": str(contribution.id),
        "amount": amount,
        "currency": currency,
        "date": date_paid,
    }
    return _settle(actor, contribution, "funds.confirmed", payload, idempotency_key)


def funds_reject(
    *, actor, contribution: Contribution, reason: str, idempotency_key: str | None = None
) -> Contribution:
    """The treasurer finds no such payment in its books: it never counts."""
    _treasurer_signer(actor, contribution)
    _text(reason, "reason", 500)
    payload = {"contribution": str(contribution.id), "reason": reason}
    return _settle(actor, contribution, "funds.rejected", payload, idempotency_key)


def _recorded_funds(contribution: Contribution) -> dict:
    """The amount, currency and day the member recorded, as written in its entry."""
    from ledger.models import Entry

    entry = Entry.objects.filter(index=contribution.recorded_in).first()
    p = entry.payload if entry is not None else {}
    if p.get("contribution") != str(contribution.id):
        raise GovernanceError("the contribution's entry is not funds.contributed", 409)
    return {"amount": p["amount"], "currency": p["currency"], "date": p["date"]}


def _pending_settled_by_its_treasurer(entry: Appended) -> Contribution | None:
    """The pending payment a funds.confirmed or funds.rejected entry settles, if it is
    signed by that payment's treasurer; otherwise the entry is on the record, without
    effect."""
    c = Contribution.objects.filter(
        id=uuid.UUID(entry.payload["contribution"]), kind=Contribution.Kind.FUNDS
    ).first()
    if c is None or c.state != Contribution.State.PENDING:
        return None
    return c if _by_treasurer(entry.author, c.member_id) else None


@applier("funds.confirmed")
def apply_funds_confirmed(entry: Appended) -> None:
    p = entry.payload
    c = _pending_settled_by_its_treasurer(entry)
    if c is None:
        return
    recorded = {
        "amount": format(c.amount.normalize(), "f"),
        "currency": c.currency,
        "date": c.date.isoformat(),
    }
    amount, day = Decimal(p["amount"]), date.fromisoformat(p["date"])
    same = (Decimal(recorded["amount"]), recorded["currency"], recorded["date"]) == (
        amount,
        p["currency"],
        p["date"],
    )
    Contribution.objects.filter(id=c.id).update(
        state=Contribution.State.COUNTED,
        confirmed_in=entry.index,
        amount=amount,
        amount_micros=int(amount * 1_000_000),
        currency=p["currency"],
        date=day,
        delivered_on=day,
        claimed=None if same else recorded,
    )


@applier("funds.rejected")
def apply_funds_rejected(entry: Appended) -> None:
    c = _pending_settled_by_its_treasurer(entry)
    if c is None:
        return
    Contribution.objects.filter(id=c.id).update(
        state=Contribution.State.REJECTED, confirmed_in=entry.index
    )


# --- disputes --------------------------------------------------------------------------------

DISPUTABLE = (Contribution.State.COUNTED, Contribution.State.REPORTED, Contribution.State.PENDING)


def bound_together(member: str, other: str) -> bool:
    """Are ``member`` and ``other`` both bound (signed, not withdrawn) by one agreement in
    force that shares cost? Only then may one dispute the other's contributions."""
    bound = AgreementParty.objects.filter(
        agreement__state=Agreement.State.IN_FORCE,
        signed_in__isnull=False,
        withdrawn_in__isnull=True,
    )
    mine = set(bound.filter(member_id=member).values_list("agreement_id", flat=True))
    shared = bound.filter(member_id=other, agreement_id__in=mine).values_list(
        "agreement__terms", flat=True
    )
    return any("cost_sharing" in terms for terms in shared)


def open_dispute_of(contribution) -> Dispute | None:
    return Dispute.objects.filter(contribution=contribution, resolved_in__isnull=True).first()


def contribution_dispute(
    *, actor, contribution: Contribution, reason: str, idempotency_key: str | None = None
) -> Dispute:
    """A member disputes a contribution (its signatory, for a member bound with the
    contribution's member by an agreement in force that shares cost): signed with the
    disputing member's key, reason included. The contribution keeps counting until the
    secretariat upholds the dispute; one open dispute per contribution."""
    signer, member = acting_signer(actor)
    if member is None:
        raise GovernanceError("members dispute contributions; the secretariat resolves", 403)
    _text(reason, "reason", 500)
    if not bound_together(member, contribution.member_id):
        raise GovernanceError(
            f"only a signatory of a member bound with {contribution.member_id} by an agreement "
            "in force that shares cost disputes its contributions",
            403,
        )
    entry_id = idempotent_entry_id(actor, idempotency_key) if idempotency_key else None
    payload = {
        "dispute": str(keyed_uuid(entry_id)),
        "contribution": str(contribution.id),
        "reason": reason,
    }
    if replay_of(entry_id, "contribution.disputed", payload):
        return Dispute.objects.get(id=payload["dispute"])
    with transaction.atomic(durable=True):
        locked = Contribution.objects.select_for_update().get(id=contribution.id)
        if locked.state not in DISPUTABLE:
            raise GovernanceError(f"the contribution is {locked.state}", 409)
        current = open_dispute_of(locked)
        if current is not None:
            raise GovernanceError(
                f"the contribution is under dispute {current.id} already (opened by "
                f"{current.member_id} at entry {current.opened_in}): one open dispute at a time",
                409,
            )
        ledger.entry_append(
            signer=signer, entry_id=entry_id, kind="contribution.disputed", payload=payload
        )
    return Dispute.objects.get(id=payload["dispute"])


def dispute_resolve(
    *, actor, dispute: Dispute, outcome: str, resolution: str, idempotency_key: str | None = None
) -> Dispute:
    """The secretariat resolves a dispute: upheld voids the contribution; dismissed
    leaves it as it was."""
    if acting_for(actor) is not None:
        raise GovernanceError("the secretariat resolves disputes", 403)
    if outcome not in ("upheld", "dismissed"):
        raise GovernanceError("outcome: upheld or dismissed")
    _text(resolution, "resolution", 500)
    entry_id = idempotent_entry_id(actor, idempotency_key) if idempotency_key else None
    payload = {"dispute": str(dispute.id), "outcome": outcome, "resolution": resolution}
    if replay_of(entry_id, "contribution.resolved", payload):
        dispute.refresh_from_db()
        return dispute
    with transaction.atomic(durable=True):
        locked = Dispute.objects.select_for_update().get(id=dispute.id)
        if locked.resolved_in is not None:
            raise GovernanceError("the dispute is resolved already", 409)
        ledger.entry_append(
            signer=secretariat_signer(),
            kind="contribution.resolved",
            entry_id=entry_id,
            payload=payload,
        )
    dispute.refresh_from_db()
    return dispute


@applier("contribution.disputed")
def apply_disputed(entry: Appended) -> None:
    p = entry.payload
    member = _by_member_key(entry)
    contribution = Contribution.objects.filter(id=uuid.UUID(p["contribution"])).first()
    if member is None or contribution is None or contribution.state not in DISPUTABLE:
        return
    if Dispute.objects.filter(id=uuid.UUID(p["dispute"])).exists():
        return
    if open_dispute_of(contribution) is not None:
        return  # one open dispute at a time: on the record, without effect
    if not bound_together(member, contribution.member_id):
        return
    Dispute.objects.create(
        id=uuid.UUID(p["dispute"]),
        contribution=contribution,
        member_id=member,
        reason=p["reason"],
        opened_in=entry.index,
    )
    Contribution.objects.filter(id=contribution.id).update(disputed=True)


@applier("contribution.resolved")
def apply_resolved(entry: Appended) -> None:
    p = entry.payload
    dispute = Dispute.objects.filter(id=uuid.UUID(p["dispute"]), resolved_in__isnull=True).first()
    if dispute is None or not _is_secretariat(_key_of(entry.author)):
        return
    Dispute.objects.filter(id=dispute.id).update(
        outcome=p["outcome"], resolution=p["resolution"], resolved_in=entry.index
    )
    changes = {"disputed": False}
    if p["outcome"] == "upheld":
        changes["state"] = Contribution.State.VOID
    Contribution.objects.filter(id=dispute.contribution_id).update(**changes)


# --- entries signed by their authors' own keys (POST /api/v1/ledger/entries) -------------------


def _refuse(fn, *args):
    try:
        return fn(*args)
    except GovernanceError as exc:
        raise submissions.Refused(str(exc), exc.status) from exc


def _contribution_id(payload) -> str:
    value = payload.get("contribution") if isinstance(payload, dict) else None
    try:
        canonical_id = str(uuid.UUID(str(value)))
    except ValueError:
        canonical_id = None
    if canonical_id != value:
        raise submissions.Refused("contribution must be a UUID in its canonical form")
    if Contribution.objects.filter(id=value).exists():
        raise submissions.Refused("that contribution exists already", 409)
    return value


def _recorder_of(key, submitter) -> str:
    """A member's key, submitted by its recorder or signatory, for a member in standing."""
    if key.kind != "member" or recording_for(submitter) != key.owner:
        raise submissions.Refused(f"you may not record for {key.owner}", 403)
    if not Member.objects.filter(code=key.owner, status=Member.Status.MEMBER).exists():
        raise submissions.Refused(f"{key.owner} is not a member in good standing", 403)
    return key.owner


@submissions.accepts("compute.attested")
def _submitted_attestation(signed, key, submitter) -> None:
    payload = signed.envelope["payload"]
    if set(payload) != {"import", "export_sha256"}:
        raise submissions.Refused("compute.attested payload is {import, export_sha256}")
    try:
        imported = SacctImport.objects.filter(id=uuid.UUID(str(payload["import"]))).first()
    except ValueError:
        imported = None
    if imported is None:
        raise submissions.Refused("no such import", 404)
    facility = imported.facility
    if (key.kind, key.owner) != ("facility", facility.code):
        raise submissions.Refused(f"only {facility.code}'s key attests its imports", 403)
    if recording_for(submitter) != facility.operator_id:
        raise submissions.Refused(f"you may not act for {facility.code}", 403)
    if imported.attested_in is not None:
        raise submissions.Refused("this import is attested already", 409)
    if payload["export_sha256"] != imported.export_sha256:
        raise submissions.Refused("export_sha256 is not the imported export's", 409)


@submissions.accepts("data.contributed")
def _submitted_data(signed, key, submitter) -> None:
    payload = signed.envelope["payload"]
    _recorder_of(key, submitter)
    if set(payload) != {"contribution", "dataset"}:
        raise submissions.Refused("data.contributed payload is {contribution, dataset}")
    _contribution_id(payload)
    _refuse(dataset_record, payload["dataset"])


@submissions.accepts("funds.contributed")
def _submitted_funds(signed, key, submitter) -> None:
    payload = signed.envelope["payload"]
    _recorder_of(key, submitter)
    fields = {"contribution", "amount", "currency", "date", "reference"}
    if set(payload) != fields:
        raise submissions.Refused(f"funds.contributed payload is {{{', '.join(sorted(fields))}}}")
    _contribution_id(payload)
    _refuse(
        check_funds, payload["amount"], payload["currency"], payload["date"], payload["reference"]
    )
    _refuse(check_paid_under_agreement, key.owner, payload["date"])


def _submitted_settlement(signed, key, submitter, fields: set[str]) -> Contribution:
    """A treasurer holding its own key confirms or rejects a pending payment."""
    payload = signed.envelope["payload"]
    kind = signed.envelope["kind"]
    if set(payload) != fields:
        raise submissions.Refused(f"{kind} payload is {{{', '.join(sorted(fields))}}}")
    try:
        c = Contribution.objects.filter(id=uuid.UUID(str(payload["contribution"]))).first()
    except ValueError:
        c = None
    if c is None or c.kind != Contribution.Kind.FUNDS:
        raise submissions.Refused("no such payment", 404)
    treasurer = treasurer_of(c.member_id)
    if (key.kind, key.owner) != ("member", treasurer) or recording_for(submitter) != key.owner:
        raise submissions.Refused(f"only {treasurer}, the treasurer, confirms this payment", 403)
    if c.state != Contribution.State.PENDING:
        raise submissions.Refused(f"the payment is {c.state}: it is not pending", 409)
    return c


@submissions.accepts("funds.confirmed")
def _submitted_confirmation(signed, key, submitter) -> None:
    _submitted_settlement(signed, key, submitter, {"contribution", "amount", "currency", "date"})
    p = signed.envelope["payload"]
    _refuse(check_funds, p["amount"], p["currency"], p["date"], "")


@submissions.accepts("funds.rejected")
def _submitted_rejection(signed, key, submitter) -> None:
    _submitted_settlement(signed, key, submitter, {"contribution", "reason"})
    _refuse(_text, signed.envelope["payload"]["reason"], "reason", 500)
