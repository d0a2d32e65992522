#!/usr/bin/env python
"""Contributions benchmark on PostgreSQL: SLURM import, cost-share report, manifests.

    python bench/contributions_bench.py [--quick] [--only import|report|manifest]
        [--jobs 100000] [--contributions 100000] [--manifest-mb 2048]
        [--database-url postgres://postgres@127.0.0.1:5432/postgres]

Creates (and afterwards drops) a scratch database, bench_contributions, on the server
named by --database-url, and prints each figure beside a baseline measured in the same
run on the same machine:

- SLURM import: a generated ``sacct --parsable2`` export of 100,000 job lines (plus their
  steps: .batch, .extern, .0 ...; array tasks, heterogeneous components, a few pending
  and running jobs, typed and MIG GPU entries, several accounts, two partitions),
  imported end to end by ``contributions.compute.sacct_import`` (read the file, parse, aggregate,
  record on the ledger, commit) as a recorder of the facility's operator. Target:
  >= 20,000 lines/s. Baseline: reading the same bytes and ``str.split("|")`` of every
  line, the floor any parser pays.
- Cost-share report over 100,000 contributions (funds and data entries signed by the
  members' hosted keys and appended in bulk, compute from several real imports), for a
  treaty in force among six members with a priced valuation table. Target: <= 1 s
  (p50 of 5 runs after a warm-up). Baseline: a bare SELECT ... SUM ... GROUP BY member,
  kind over the same table.
- Manifest: ``contributions.manifest.build`` over a directory of random files (a few of
  ~256 MB, many of 64 KB-1 MB), page cache warm, against ``sha256sum`` over the same
  files in one process. Target: >= 0.9 of sha256sum's throughput.

Checkpoint publication after each commit is turned off (LEDGER_PUBLISH_ON_APPEND=0), as
in ledger_bench.py: in production it is a debounced background task.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SCRATCH = "bench_contributions"
SECTIONS = ("import", "report", "manifest")
MB = 1 << 20  # sizes and throughputs: 1 MB = 2^20 bytes
KB = 1 << 10

# The consortium: six members, the treaty's cost-sharing scale, national currencies.
MEMBERS = {
    "NL": 17_900_000,
    "SE": 10_550_000,
    "PL": 36_750_000,
    "PT": 10_470_000,
    "FI": 5_600_000,
    "CZ": 10_900_000,
}
SCALE = {"NL": "0.26", "SE": "0.16", "PL": "0.22", "PT": "0.07", "FI": "0.09", "CZ": "0.20"}
CURRENCY = {"NL": "EUR", "SE": "SEK", "PL": "PLN", "PT": "EUR", "FI": "EUR", "CZ": "CZK"}
# How the filler contributions are spread over the members (some ahead, some behind).
SPREAD = {"NL": 0.16, "SE": 0.22, "PL": 0.12, "PT": 0.10, "FI": 0.28, "CZ": 0.12}
VALUATION = {
    "version": 1,
    "unit": "H100-hour",
    "weights": {"h100": "1", "a100": "0.45", "a100_3g.20gb": "0.2", "a100_1g.5gb": "0.07"},
    "unit_price": {"amount": "2.10", "currency": "EUR"},
    "data_price": {"amount": "0.12", "currency": "EUR", "per_tokens": 1_000_000},
}

# The facility: run by Finland, two GPU partitions, accounts mapped to members.
FACILITY = {
    "code": "aifactory",
    "name": "EuroHPC AI Factory",
    "operator": "FI",
    "country": "FI",
    "timezone": "Europe/Helsinki",
    "default_accelerator": "a100",
    "partitions": {"gpu-h100": "h100", "gpu-a100": "a100"},
    "accounts": {
        "project_465000101": "NL",
        "project_465000102": "SE",
        "project_465000103": "PL",
        "project_465000104": "PT",
        "project_465000105": "FI",
        "project_465000106": "CZ",
        "project_465000107": "FI",
        "project_465000108": "NL",
    },
}
UNMAPPED = "project_465000199"
ACCOUNTS = [*FACILITY["accounts"], UNMAPPED]
ACCOUNT_WEIGHTS = [14, 12, 12, 8, 16, 10, 8, 8, 2]
# The XDMoD-style field list (sacct --parsable2 --format ...): Elapsed, no ElapsedRaw.
FIELDS = (
    "JobID",
    "JobIDRaw",
    "JobName",
    "Cluster",
    "Partition",
    "QOS",
    "Account",
    "User",
    "Submit",
    "Eligible",
    "Start",
    "End",
    "Elapsed",
    "ExitCode",
    "State",
    "NNodes",
    "NCPUS",
    "ReqTRES",
    "AllocTRES",
    "Timelimit",
    "NodeList",
)
HEADER = "|".join(FIELDS)
FINISHED_STATES = (
    ("COMPLETED", 80),
    ("FAILED", 7),
    ("CANCELLED", 5),
    ("TIMEOUT", 5),
    ("OUT_OF_MEMORY", 2),
    ("NODE_FAIL", 1),
)
JOB_NAMES = (
    "pretrain",
    "sft-run",
    "eval-harness",
    "tokenize",
    "dpo",
    "ckpt-convert",
    "bash",
    "interactive",
    "llm-7b",
    "llm-70b-shard",
)


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def say(text: str = "") -> None:
    print(text, flush=True)


def setup_env(url: str, media: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    os.environ.setdefault("LEDGER_KEK", secrets.token_bytes(32).hex())
    os.environ["LEDGER_PUBLISH_ON_APPEND"] = "0"
    os.environ["MEDIA_ROOT"] = media  # the treaty's document, removed afterwards
    # A scratch ledger's published checkpoint is its own (docs/backups.md).
    os.environ["LEDGER_PUBLISHED_PATH"] = media + "-published-checkpoint"
    os.environ.pop("CELERY_BROKER_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "consortium.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")


def scratch_url(server_url: str) -> str:
    return server_url.rsplit("/", 1)[0] + "/" + SCRATCH


def recreate_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- the consortium ------------------------------------------------------------------------


def found() -> dict:
    """The consortium of six, its secretariat, a recorder of the facility's operator, a
    signatory for each member, and the facility (hosted key)."""
    from django.contrib.auth import get_user_model

    from consortium.governance import members as governance
    from consortium.governance import seats
    from contributions.facilities import facility_register

    User = get_user_model()
    governance.consortium_found(
        name="Bench consortium",
        members=[
            governance.member_record(code=c, figures={"population": p}) for c, p in MEMBERS.items()
        ],
    )
    ops = User.objects.create_user("ops")
    seats.seat_assign(actor=None, user=ops, role="secretariat")
    signatories = {}
    for code in MEMBERS:
        signatories[code] = User.objects.create_user(f"sig_{code.lower()}")
        seats.seat_assign(actor=ops, user=signatories[code], role="signatory", member=code)
    recorder = User.objects.create_user("rec_fi")
    seats.seat_assign(actor=ops, user=recorder, role="recorder", member="FI")
    facility = facility_register(actor=ops, record=dict(FACILITY))
    return {"ops": ops, "signatories": signatories, "recorder": recorder, "facility": facility}


# --- SLURM exports -------------------------------------------------------------------------


def fmt_time(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S")


def fmt_elapsed(seconds: int) -> str:
    days, rest = divmod(seconds, 86400)
    text = f"{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
    return f"{days}-{text}" if days else text


class ExportMaker:
    """A realistic ``sacct --parsable2`` export, and what a correct reader must find in it
    (GPU-seconds per member and accelerator type, allocations, rows left out)."""

    def __init__(self, *, seed: int, first_id: int, since: datetime, span: timedelta):
        self.rng = random.Random(seed)
        self.next_id = first_id
        self.clock = since
        self.span = span
        self.rows: list[str] = [HEADER]
        self.job_lines = 0
        self.step_lines = 0
        self.expected: Counter = Counter()  # (member, accelerator) -> GPU-seconds
        self.allocations = 0  # finished allocations with GPUs, of any account
        self.recorded: Counter = Counter()  # (member, accelerator) -> allocations
        self.left_out: Counter = Counter()

    # One line: fields in FIELDS order.
    def _line(
        self,
        jobid,
        raw,
        name,
        partition,
        qos,
        account,
        user,
        submit,
        start,
        end,
        elapsed,
        exitcode,
        state,
        nnodes,
        ncpus,
        req,
        alloc,
        limit,
        nodes,
    ) -> None:
        self.rows.append(
            "|".join(
                (
                    jobid,
                    raw,
                    name,
                    "aifactory",
                    partition,
                    qos,
                    account,
                    user,
                    submit,
                    submit,
                    start,
                    end,
                    elapsed,
                    exitcode,
                    state,
                    nnodes,
                    ncpus,
                    req,
                    alloc,
                    limit,
                    nodes,
                )
            )
        )

    def _id(self) -> int:
        self.next_id += 1
        return self.next_id

    def _allocation(self, partition: str) -> tuple[int, int, str, str, dict[str, int]]:
        """(nodes, cpus, ReqTRES, AllocTRES, GPUs by type) of one allocation."""
        rng = self.rng
        nodes = rng.choice((1, 1, 1, 1, 2, 2, 4, 8))
        mem = f"mem={nodes * 480}G"
        r = rng.random()
        if r < 0.04:  # a CPU job in a GPU partition: no GPU allocated
            cpus = 32 * nodes
            tres = f"billing={cpus},cpu={cpus},{mem},node={nodes}"
            return nodes, cpus, tres, tres, {}
        if partition == "gpu-h100":
            gpus = 4 * nodes if nodes > 1 else rng.choice((1, 2, 4, 4))
            cpus, billing = 16 * gpus, 32 * gpus
            base = f"billing={billing},cpu={cpus}"
            req = f"{base},gres/gpu={gpus},{mem},node={nodes}"
            if r < 0.70:
                alloc = f"{base},gres/gpu={gpus},gres/gpu:h100={gpus},{mem},node={nodes}"
            else:  # untyped, with GPU memory (not GPUs): the partition's type
                alloc = f"{base},gres/gpu={gpus},gres/gpumem={80 * gpus}G,{mem},node={nodes}"
            return nodes, cpus, req, alloc, {"h100": gpus}
        if r < 0.18:  # MIG slices on one node, typed only: summed
            nodes, big, small = 1, rng.choice((0, 1, 2)), rng.choice((1, 2, 3))
            cpus = 4 * (big + small)
            parts = [f"billing={cpus},cpu={cpus}"]
            typed = {}
            if small:
                parts.append(f"gres/gpu:a100_1g.5gb={small}")
                typed["a100_1g.5gb"] = small
            if big:
                parts.append(f"gres/gpu:a100_3g.20gb={big}")
                typed["a100_3g.20gb"] = big
            parts += ["mem=64G", "node=1"]
            tres = ",".join(parts)
            return nodes, cpus, tres, tres, typed
        gpus = 8 * nodes if nodes > 1 else rng.choice((1, 2, 4, 8))
        cpus = 8 * gpus
        base = f"billing={16 * gpus},cpu={cpus}"
        req = f"{base},gres/gpu={gpus},{mem},node={nodes}"
        if r < 0.58:
            alloc = f"{base},gres/gpu={gpus},gres/gpu:a100={gpus},{mem},node={nodes}"
        else:  # untyped: the partition's type
            alloc = req
        return nodes, cpus, req, alloc, {"a100": gpus}

    def _state(self) -> str:
        rng = self.rng
        state = rng.choices([s for s, _ in FINISHED_STATES], [w for _, w in FINISHED_STATES])[0]
        return f"CANCELLED by {rng.randint(10000, 99999)}" if state == "CANCELLED" else state

    def _tick(self, jobs: int) -> datetime:
        self.clock += timedelta(seconds=self.rng.expovariate(jobs / self.span.total_seconds()))
        return self.clock

    def _job(
        self,
        jobid: str,
        raw: int,
        *,
        partition: str,
        account: str,
        submit: datetime,
        state: str | None = None,
        steps: bool = True,
    ) -> None:
        """A job that started (finished, or RUNNING if ``state`` says so), and its steps."""
        rng = self.rng
        nodes, cpus, req, alloc, gpus = self._allocation(partition)
        start = submit + timedelta(seconds=int(rng.expovariate(1 / 1800)))
        elapsed = int(min(172800, rng.lognormvariate(8.2, 1.3))) + 1
        running = state == "RUNNING"
        state = state or self._state()
        end = "Unknown" if running else fmt_time(start + timedelta(seconds=elapsed))
        exitcode = "0:0" if state in ("COMPLETED", "RUNNING") else f"{rng.randint(1, 255)}:0"
        user = f"u{rng.randint(1000, 1100)}"
        nodelist = (
            f"nid{rng.randint(5000, 7000):06d}"
            if nodes == 1
            else f"nid[{(n := rng.randint(5000, 7000)):06d}-{n + nodes - 1:06d}]"
        )
        name = rng.choice(JOB_NAMES)
        limit = rng.choice(("1-00:00:00", "2-00:00:00", "12:00:00", "04:00:00"))
        self._line(
            jobid,
            str(raw),
            name,
            partition,
            "normal",
            account,
            user,
            fmt_time(submit),
            fmt_time(start),
            end,
            fmt_elapsed(elapsed),
            exitcode,
            state,
            str(nodes),
            str(cpus),
            req,
            alloc,
            limit,
            nodelist,
        )
        self.job_lines += 1
        # What a correct reader makes of it.
        member = FACILITY["accounts"].get(account)
        if running:
            self.left_out["not finished (RUNNING)"] += 1
        elif not gpus:
            self.left_out["no GPUs allocated"] += 1
        elif member is None:
            self.allocations += 1
            # Counted once per allocation, whatever types it used.
            self.left_out["accounts not mapped to a member in good standing"] += 1
        else:
            self.allocations += 1
            for kind, count in gpus.items():
                self.expected[(member, kind)] += count * elapsed
                self.recorded[(member, kind)] += 1
        if not steps:
            return
        # Steps repeat parts of the allocation; they are not allocations.
        step_state = "RUNNING" if running else state.split(" ", 1)[0]
        node_cpus = cpus // nodes
        node_tres = alloc.replace(f"node={nodes}", "node=1").replace(
            f"cpu={cpus}", f"cpu={node_cpus}"
        )
        srun = [f".{i}" for i in range(rng.choice((0, 1, 1, 2, 3)))]
        for suffix, tres, sname, snodes in (
            (".batch", node_tres, "batch", "1"),
            (".extern", alloc, "extern", str(nodes)),
            *((s, alloc, "python", str(nodes)) for s in srun),
        ):
            self._line(
                jobid + suffix,
                f"{raw}{suffix}",
                sname,
                "",
                "",
                account,
                "",
                fmt_time(submit),
                fmt_time(start),
                end,
                fmt_elapsed(elapsed),
                exitcode if suffix == ".batch" else "0:0",
                step_state,
                snodes,
                str(node_cpus if suffix == ".batch" else cpus),
                "",
                tres,
                "",
                nodelist,
            )
            self.step_lines += 1

    def make(self, jobs: int) -> bytes:
        """An export of exactly ``jobs`` job lines (and their steps)."""
        rng = self.rng
        while self.job_lines < jobs:
            left = jobs - self.job_lines
            submit = self._tick(jobs)
            partition = rng.choice(("gpu-h100", "gpu-a100"))
            account = rng.choices(ACCOUNTS, ACCOUNT_WEIGHTS)[0]
            r = rng.random()
            raw = self._id()
            if r < 0.015:  # a pending array: one record for several tasks
                a = rng.randint(0, 20)
                jobid = f"{raw}_[{a}-{a + rng.randint(1, 30)},{a + 40}%4]"
                self._pending(jobid, raw, partition, account, submit)
            elif r < 0.025:  # a pending job
                self._pending(str(raw), raw, partition, account, submit)
            elif r < 0.035:  # a running job, with its running steps
                self._job(
                    str(raw),
                    raw,
                    partition=partition,
                    account=account,
                    submit=submit,
                    state="RUNNING",
                )
            elif r < 0.04:  # cancelled before it started
                self._line(
                    str(raw),
                    str(raw),
                    rng.choice(JOB_NAMES),
                    partition,
                    "normal",
                    account,
                    f"u{rng.randint(1000, 1100)}",
                    fmt_time(submit),
                    "Unknown",
                    fmt_time(submit + timedelta(minutes=5)),
                    "00:00:00",
                    "0:0",
                    f"CANCELLED by {rng.randint(10000, 99999)}",
                    "1",
                    "8",
                    "billing=8,cpu=8,gres/gpu=1,node=1",
                    "",
                    "04:00:00",
                    "None assigned",
                )
                self.job_lines += 1
                self.left_out["never started"] += 1
            elif r < 0.22:  # array tasks: allocations of their own, raw ids of their own
                for task in range(min(left, rng.randint(2, 12))):
                    tid = raw if task == 0 else self._id()
                    self._job(
                        f"{raw}_{task}", tid, partition=partition, account=account, submit=submit
                    )
            elif r < 0.27 and left >= 2:  # a heterogeneous job: two components
                self._job(f"{raw}+0", raw, partition="gpu-a100", account=account, submit=submit)
                self._job(
                    f"{raw}+1", self._id(), partition="gpu-h100", account=account, submit=submit
                )
            else:
                self._job(str(raw), raw, partition=partition, account=account, submit=submit)
        return ("\n".join(self.rows) + "\n").encode()

    def _pending(self, jobid: str, raw: int, partition: str, account: str, submit) -> None:
        self._line(
            jobid,
            str(raw),
            self.rng.choice(JOB_NAMES),
            partition,
            "normal",
            account,
            f"u{self.rng.randint(1000, 1100)}",
            fmt_time(submit),
            "Unknown",
            "Unknown",
            "00:00:00",
            "0:0",
            "PENDING",
            "2",
            "64",
            "billing=64,cpu=64,gres/gpu=8,node=2",
            "",
            "2-00:00:00",
            "None assigned",
        )
        self.job_lines += 1
        self.left_out["not finished (PENDING)"] += 1


def export(jobs: int, *, seed: int, first_id: int, since: datetime, span: timedelta):
    maker = ExportMaker(seed=seed, first_id=first_id, since=since, span=span)
    data = maker.make(jobs)
    return data, maker


# --- 1. SLURM import -----------------------------------------------------------------------


def baseline_split(path: Path) -> tuple[float, int]:
    """(seconds, lines) to read the bytes and split every line on "|": the floor."""
    t0 = time.perf_counter()
    text = path.read_bytes().decode("utf-8")
    lines = 0
    for line in text.split("\n")[1:]:
        if line:
            line.split("|")
            lines += 1
    return time.perf_counter() - t0, lines


def bench_import(world: dict, jobs: int, workdir: Path) -> dict:
    from contributions.compute import sacct_import

    now = datetime.now(UTC).replace(tzinfo=None)
    t0 = time.perf_counter()
    data, maker = export(
        jobs, seed=1, first_id=1_000_000, since=now - timedelta(days=100), span=timedelta(days=90)
    )
    path = workdir / "sacct-export.txt"
    path.write_bytes(data)
    made = time.perf_counter() - t0
    lines = maker.job_lines + maker.step_lines
    say(
        f"SLURM import: export of {maker.job_lines:,} job lines + {maker.step_lines:,} step"
        f" lines = {lines:,} lines, {len(data) / MB:.1f} MB (generated in {made:.1f} s)"
    )

    base = min(baseline_split(path) for _ in range(3))
    base_rate = base[1] / base[0]
    assert base[1] == lines

    t0 = time.perf_counter()
    reading, rows, imported = sacct_import(
        actor=world["recorder"], facility=world["facility"], data=path.read_bytes()
    )
    took = time.perf_counter() - t0
    t0 = time.perf_counter()
    sacct_import(
        actor=world["recorder"], facility=world["facility"], data=path.read_bytes(), dry_run=True
    )
    dry = time.perf_counter() - t0
    path.unlink()

    # The figures are of a correct import: what was recorded is what the export holds.
    got = {(r["member"], r["accelerator"]): r["gpu_seconds"] for r in rows}
    assert got == dict(maker.expected), (got, dict(maker.expected))
    assert {(r["member"], r["accelerator"]): r["allocations"] for r in rows} == maker.recorded
    assert reading.lines == lines and reading.steps == maker.step_lines
    # Allocations of unmapped accounts are left out of the reading's count.
    assert reading.allocations + sum(reading.unmapped.values()) == maker.allocations
    assert imported.left_out == dict(maker.left_out), (imported.left_out, maker.left_out)
    assert imported.attested_in == imported.recorded_in  # signed by the facility's key

    rate, job_rate = lines / took, maker.job_lines / took
    say(
        f"  sacct_import end to end: {took:6.2f} s  {rate:9,.0f} lines/s  {job_rate:8,.0f} job lines/s"
        f"   (target >= 20,000 lines/s: {'met' if rate >= 20_000 else 'MISSED'})"
    )
    say(
        f"  of which parse + aggregate (the same export, dry run, after): {dry:.2f} s"
        f" ({lines / dry:,.0f} lines/s); recording {took - dry:.2f} s"
    )
    say(
        f"  baseline read + split('|'): {base[0]:6.3f} s  {base_rate:9,.0f} lines/s (best of 3);"
        f" import/baseline rate ratio {rate / base_rate:.3f} ({took / base[0]:.0f}x the floor)"
    )
    say(
        f"  recorded {len(rows)} contributions from {imported.allocations:,} allocations;"
        f" left out: {', '.join(f'{k}: {v:,}' for k, v in sorted(imported.left_out.items()))}"
    )
    return {
        "job_lines": maker.job_lines,
        "step_lines": maker.step_lines,
        "lines": lines,
        "bytes": len(data),
        "seconds": took,
        "lines_per_s": rate,
        "job_lines_per_s": job_rate,
        "dry_run_seconds": dry,
        "baseline_seconds": base[0],
        "baseline_lines_per_s": base_rate,
        "ratio": rate / base_rate,
        "target_lines_per_s": 20_000,
        "met": rate >= 20_000,
    }


# --- 2. cost-share report ------------------------------------------------------------------


def treaty(world: dict):
    from consortium.governance import agreements, documents

    # In force for the past year and more: funds count from the day it took effect.
    since = datetime.now(UTC).date() - timedelta(days=400)
    terms = {
        "parties": list(MEMBERS),
        "effective": {"from": since.isoformat(), "until": None},
        "accounting_unit": "EUR",
        "exchange_rates": {"SEK": "0.087", "PLN": "0.23", "CZK": "0.04"},
        "cost_sharing": {"method": "scale", "shares": SCALE},
        "valuation": VALUATION,
    }
    doc = documents.document_store(
        actor=world["ops"], name="treaty.txt", content=b"Treaty (benchmark)\n"
    )
    a = agreements.agreement_propose(
        actor=world["ops"], kind="treaty", title="Treaty", terms=terms, document_sha256=doc.sha256
    )
    for user in world["signatories"].values():
        a.refresh_from_db()
        agreements.agreement_sign(
            actor=user, agreement=a, terms_sha256=a.terms_sha256, document_sha256=a.document_sha256
        )
    a.refresh_from_db()
    assert a.state == "in_force", a.state
    return a


def dataset(rng: random.Random, member: str, n: int) -> dict:
    size = rng.randint(10**9, 10**12)
    return {
        "name": f"{member.lower()}-corpus-{n}",
        "description": "Public-sector text, deduplicated",
        "manifest_sha256": f"{rng.getrandbits(256):064x}",
        "size_bytes": size,
        "files": rng.randint(1, 100_000),
        "tokens": size // 4,
        "licence": "CC-BY-4.0",
        "duo": {"permission": "DUO:0000042", "modifiers": ["DUO:0000046"]},
        "residency": member,
        "access_mode": rng.choice(("federated", "remote", "transferred")),
    }


def funds(rng: random.Random, member: str, today) -> dict:
    return {
        "amount": f"{rng.randint(100, 5_000_000)}.{rng.randint(0, 99):02d}",
        "currency": CURRENCY[member] if rng.random() < 0.6 else "EUR",
        "date": (today - timedelta(days=rng.randint(1, 365))).isoformat(),
        "reference": "",
    }


def check_payload_shapes(world: dict, rng: random.Random) -> None:
    """One funds and one data contribution through the services, so that the bulk
    drafts below have exactly the payloads the services build (and pass their checks)."""
    from contributions.data import data_contribute
    from contributions.funds import funds_contribute
    from ledger.services import Entry

    today = datetime.now(UTC).date()
    user = world["signatories"]["SE"]
    f = funds(rng, "SE", today)
    funds_contribute(
        actor=user,
        amount=f["amount"],
        currency=f["currency"],
        date_paid=f["date"],
        reference=f["reference"],
    )
    data_contribute(actor=user, dataset=dataset(rng, "SE", 0))
    made = {e.kind: e.payload for e in Entry.objects.filter(kind__endswith=".contributed")}
    # (jsonb keeps its own key order: compared as sets)
    assert set(made["funds.contributed"]) == {"contribution", *f}
    assert set(made["data.contributed"]) == {"contribution", "dataset"}
    assert set(made["data.contributed"]["dataset"]) == set(dataset(rng, "SE", 0))


def fill(world: dict, count: int, chunk: int = 2000) -> tuple[float, Counter]:
    """Append signed funds and data entries in bulk until the table holds ``count``
    contributions: (seconds, entries by kind)."""
    from django.db import transaction

    from consortium.governance.changes import member_signer
    from contributions.models import Contribution
    from ledger import services as ledger
    from ledger.services import Draft

    rng = random.Random(3)
    today = datetime.now(UTC).date()
    need = max(0, count - Contribution.objects.count())
    per_member = {c: int(need * share) for c, share in SPREAD.items()}
    per_member["FI"] += need - sum(per_member.values())
    signers = {c: member_signer(c) for c in MEMBERS}
    made: Counter = Counter()
    t0 = time.perf_counter()
    for code, total in per_member.items():
        for start in range(0, total, chunk):
            drafts = []
            for i in range(start, min(total, start + chunk)):
                if rng.random() < 0.15:
                    payload = {"contribution": str(uuid.uuid4()), "dataset": dataset(rng, code, i)}
                    drafts.append(Draft("data.contributed", payload))
                else:
                    payload = {"contribution": str(uuid.uuid4()), **funds(rng, code, today)}
                    drafts.append(Draft("funds.contributed", payload))
            with transaction.atomic(durable=True):
                ledger.entries_append(signer=signers[code], drafts=drafts)
            made.update(d.kind for d in drafts)
        say(f"    {code}: {total:,} entries ({time.perf_counter() - t0:.0f} s so far)")
    return time.perf_counter() - t0, made


def bench_report(world: dict, contributions: int, compute_jobs: int) -> dict:
    from django.db import connection
    from django.db.models import Count

    from contributions.compute import sacct_import
    from contributions.models import Contribution
    from contributions.report import cost_share_report

    agreement = treaty(world)
    check_payload_shapes(world, random.Random(2))
    now = datetime.now(UTC).replace(tzinfo=None)
    t0 = time.perf_counter()
    for k in range(6):  # six monthly exports
        data, _ = export(
            compute_jobs,
            seed=100 + k,
            first_id=50_000_000 + k * 1_000_000,
            since=now - timedelta(days=30 * (k + 1) + 10),
            span=timedelta(days=28),
        )
        sacct_import(actor=world["recorder"], facility=world["facility"], data=data)
    compute = Contribution.objects.filter(kind="compute").count()
    say(
        f"cost-share report: 6 imports of {compute_jobs:,} job lines -> {compute} compute"
        f" contributions in {time.perf_counter() - t0:.1f} s; filling to {contributions:,}:"
    )
    took, made = fill(world, contributions)
    entries = sum(made.values())
    total = Contribution.objects.count()
    kinds = {r["kind"]: r["n"] for r in Contribution.objects.values("kind").annotate(n=Count("id"))}
    say(
        f"  {entries:,} entries signed by the members' hosted keys and appended in {took:.0f} s"
        f" ({entries / took:,.0f} entries/s); table: {total:,} contributions"
        f" ({', '.join(f'{k} {v:,}' for k, v in sorted(kinds.items()))})"
    )
    with connection.cursor() as cur:
        cur.execute("ANALYZE contributions_contribution")  # as autovacuum would have by now

    cost_share_report(agreement)  # warm-up
    times, report = [], None
    for _ in range(5):
        t0 = time.perf_counter()
        report = cost_share_report(agreement)
        times.append(time.perf_counter() - t0)
    p50 = pct(times, 0.5)

    sql = (
        "SELECT member_id, kind, SUM(gpu_seconds), SUM(tokens), SUM(amount_micros)"
        " FROM contributions_contribution GROUP BY member_id, kind"
    )
    base_times, base_rows = [], []
    with connection.cursor() as cur:
        cur.execute(sql)
        cur.fetchall()  # warm-up
        for _ in range(5):
            t0 = time.perf_counter()
            cur.execute(sql)
            base_rows = cur.fetchall()
            base_times.append(time.perf_counter() - t0)
    base = pct(base_times, 0.5)

    # The figures are of a correct report: it counted what the table holds.
    d = report.as_dict()
    tokens = sum(r[3] or 0 for r in base_rows if r[1] == "data")
    assert sum(m["tokens"] for m in d["members"]) == tokens
    assert len(d["members"]) == len(MEMBERS) and not d["notes"], d["notes"]
    say(
        f"  cost_share_report p50 {ms(p50)} (min {ms(min(times))}, max {ms(max(times))}, 5 runs"
        f" after a warm-up)   (target <= 1 s: {'met' if p50 <= 1 else 'MISSED'})"
    )
    say(
        f"  baseline bare SELECT ... SUM ... GROUP BY member, kind: p50 {ms(base)};"
        f" report/baseline {p50 / base:.1f}x"
    )
    say("  " + ", ".join(f"{m['member']} {m['ratio']} {m['status']}" for m in d["members"]))
    return {
        "contributions": total,
        "by_kind": kinds,
        "fill_seconds": took,
        "p50": p50,
        "runs": times,
        "baseline_p50": base,
        "ratio": p50 / base,
        "target_seconds": 1.0,
        "met": p50 <= 1,
    }


# --- 3. manifest ---------------------------------------------------------------------------


def make_tree(root: Path, total_mb: int) -> list[Path]:
    """A dataset directory: a few large shards (~256 MB) and many documents of
    64 KB-1 MB, random bytes, ``total_mb`` MB in all."""
    rng = random.Random(5)
    total = total_mb * MB
    large = min(256 * MB, max(MB, total // 8))
    files = []
    (root / "shards").mkdir(parents=True)
    for i in range(max(1, total // 2 // large)):
        path = root / "shards" / f"train-{i:05d}.tar"
        with open(path, "wb") as f:
            for _ in range(large // (8 * MB)):
                f.write(os.urandom(8 * MB))
            f.write(os.urandom(large % (8 * MB)))
        files.append(path)
    left = total - sum(f.stat().st_size for f in files)
    n = 0
    while left > 0:
        size = min(left, rng.randint(64 * KB, MB))
        folder = root / "documents" / f"{n // 256:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"doc-{n:06d}.jsonl"
        path.write_bytes(os.urandom(size))
        files.append(path)
        left -= size
        n += 1
    return files


def bench_manifest(total_mb: int) -> dict:
    from contributions.manifest import build

    if shutil.which("sha256sum") is None:
        raise SystemExit("sha256sum is not on the PATH")
    tmp = Path(tempfile.mkdtemp(prefix="bench-manifest-"))
    try:
        root = tmp / "dataset"
        t0 = time.perf_counter()
        files = make_tree(root, total_mb)
        size = sum(f.stat().st_size for f in files)
        say(
            f"manifest: {len(files):,} files, {size / MB:,.0f} MB of random bytes"
            f" (written in {time.perf_counter() - t0:.1f} s)"
        )
        for path in files:  # warm the page cache
            with open(path, "rb") as f:
                while f.read(8 * MB):
                    pass
        cores = os.cpu_count() or 1
        sums, builds, out, manifest = [], [], b"", None
        for _ in range(3):  # alternated, best of 3 each
            t0 = time.perf_counter()
            out = subprocess.run(
                ["sha256sum", *map(str, files)], check=True, stdout=subprocess.PIPE
            ).stdout
            sums.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            manifest = build(root)
            builds.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        single = build(root, workers=1)
        one = time.perf_counter() - t0

        # The figures are of correct hashes: the manifest agrees with sha256sum.
        theirs = {}
        for line in out.decode().splitlines():
            digest, name = line.split("  ", 1)
            theirs[Path(name).relative_to(root).as_posix()] = digest
        assert manifest is not None and single.files == manifest.files
        assert {f.path: f.sha256 for f in manifest.files} == theirs

        base_rate, rate, rate1 = size / MB / min(sums), size / MB / min(builds), size / MB / one
        ratio = rate / base_rate
        runs = ", ".join(f"{s:.2f}" for s in sums)
        say(
            f"  sha256sum, 1 process:        {base_rate:7,.0f} MB/s  best {min(sums):.2f} s (runs {runs})"
        )
        runs = ", ".join(f"{s:.2f}" for s in builds)
        say(
            f"  manifest.build, {cores} workers:   {rate:7,.0f} MB/s  best {min(builds):.2f} s (runs {runs})"
            f"   ratio {ratio:.2f} (target >= 0.9: {'met' if ratio >= 0.9 else 'MISSED'})"
        )
        say(
            f"  manifest.build, 1 worker:    {rate1:7,.0f} MB/s  {one:.2f} s  (ratio {rate1 / base_rate:.2f},"
            f" for information)"
        )
        return {
            "files": len(files),
            "megabytes": size / MB,
            "cores": cores,
            "sha256sum_mb_per_s": base_rate,
            "build_mb_per_s": rate,
            "build_1_mb_per_s": rate1,
            "sha256sum_runs": sums,
            "build_runs": builds,
            "build_1_seconds": one,
            "ratio": ratio,
            "target_ratio": 0.9,
            "met": ratio >= 0.9,
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --- main ----------------------------------------------------------------------------------


def summary(results: dict) -> None:
    say("\nsummary")
    if "import" in results:
        r = results["import"]
        say(
            f"  SLURM import, {r['job_lines']:,} job lines ({r['lines']:,} lines): "
            f"{r['lines_per_s']:,.0f} lines/s, {r['job_lines_per_s']:,.0f} job lines/s;"
            f" target >= 20,000 lines/s: {'met' if r['met'] else 'MISSED'};"
            f" baseline read + split {r['baseline_lines_per_s']:,.0f} lines/s, ratio {r['ratio']:.3f}"
        )
    if "report" in results:
        r = results["report"]
        say(
            f"  cost-share report, {r['contributions']:,} contributions: p50 {ms(r['p50'])};"
            f" target <= 1 s: {'met' if r['met'] else 'MISSED'};"
            f" baseline bare GROUP BY {ms(r['baseline_p50'])}, ratio {r['ratio']:.1f}x"
        )
    if "manifest" in results:
        r = results["manifest"]
        say(
            f"  manifest, {r['megabytes']:,.0f} MB in {r['files']:,} files: build {r['build_mb_per_s']:,.0f} MB/s"
            f" ({r['cores']} workers), 1 worker {r['build_1_mb_per_s']:,.0f} MB/s;"
            f" baseline sha256sum {r['sha256sum_mb_per_s']:,.0f} MB/s; ratio {r['ratio']:.2f};"
            f" target >= 0.9: {'met' if r['met'] else 'MISSED'}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--database-url",
        default="postgres://postgres@127.0.0.1:5432/postgres",
        help=f"A PostgreSQL server; the scratch database {SCRATCH} is made on it.",
    )
    parser.add_argument("--jobs", type=int, help="Job lines in the export (default 100000).")
    parser.add_argument(
        "--contributions", type=int, help="Contributions in the report (default 100000)."
    )
    parser.add_argument("--manifest-mb", type=int, help="Manifest data in MB (default 2048).")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="Small sizes for a smoke test: 5,000 jobs, 5,000 contributions, 64 MB.",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=SECTIONS,
        help="Run this section only (repeat for several).",
    )
    parser.add_argument("--keep", action="store_true", help="Keep the scratch database.")
    parser.add_argument("--json", type=Path, default=ROOT / "var" / "bench-contributions.json")
    args = parser.parse_args()
    quick = args.quick
    jobs = args.jobs or (5_000 if quick else 100_000)
    contributions = args.contributions or (5_000 if quick else 100_000)
    manifest_mb = args.manifest_mb or (64 if quick else 2048)
    sections = args.only or list(SECTIONS)
    cores = os.cpu_count() or 1
    results: dict = {"cores": cores, "sections": sections}
    say(f"contributions benchmark, {cores} cores; sections: {', '.join(sections)}\n")

    if "import" in sections or "report" in sections:
        url = scratch_url(args.database_url)
        media = tempfile.mkdtemp(prefix="bench-media-")
        setup_env(url, media)
        recreate_database(url)
        try:
            import django

            django.setup()
            from django.core.management import call_command

            call_command("migrate", verbosity=0)
            world = found()
            if "import" in sections:
                results["import"] = bench_import(world, jobs, Path(media))
                say()
            if "report" in sections:
                results["report"] = bench_report(world, contributions, 200 if quick else 2000)
                say()
        finally:
            from django.db import connections

            connections.close_all()
            shutil.rmtree(media, ignore_errors=True)
            if not args.keep:
                drop_database(url)
    if "manifest" in sections:
        results["manifest"] = bench_manifest(manifest_mb)

    summary(results)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2, default=str))
    say(f"\nfigures written to {args.json}")


if __name__ == "__main__":
    main()
