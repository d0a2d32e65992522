"""Reading SLURM accounting exports (``sacct --parsable2`` or ``--parsable``) into
GPU-hours per account and accelerator type. Pure Python: no Django.

What real exports contain, and what this reader does with it:

- A header line names the fields, unless the caller gives them (``sacct --noheader
  --format ...``). ``--parsable`` ends every line with ``|``.
- Job steps (``123.batch``, ``123.extern``, ``123.0``, ``123_4.0``) repeat their job's
  AllocTRES: they are skipped. Array tasks (``123_4``; ``123_[1-3,7]`` stands for four
  tasks) and heterogeneous components (``123+0``, ``123+1``) are allocations of their own.
  An allocation is known by cluster, raw job id and submit time (job ids repeat after a
  controller reset), and is counted once however often it appears.
- GPUs come from AllocTRES: ``gres/gpu=N`` is the job's total over all its nodes; typed
  entries (``gres/gpu:h100=2``, MIG slices such as ``gres/gpu:a100_3g.20gb=1``) stand
  beside that total and say which types it is made of, they are not added to it (typed
  entries are summed only when no untyped total is present). ``gres/gpumem`` and
  ``gres/gpuutil`` are not GPUs. GPUs the typed entries do not account for take the
  accelerator type the facility declares for the job's partition, or its default.
- Elapsed is ``[D-]HH:MM:SS`` (ElapsedRaw, in seconds, is preferred when present).
  States may carry a suffix (``CANCELLED by 1234``); jobs not finished by State
  (PENDING, RUNNING, ...) are left out and reported.
- Times carry no zone: they are read in the facility's zone and kept in UTC.
- Free-text fields (JobName, Comment, WorkDir, SubmitLine, ...: ``FREE_TEXT``) may hold
  the delimiter, which sacct does not escape. A line with more fields than the header
  names is read when the header shows exactly one free-text field: the extra delimiters
  can only be that field's, so the line is read from both ends. With two or more
  free-text fields it cannot be read unambiguously and the export is refused, naming the
  line and how to export safely. The delimiter is read from the header
  (``sacct --parsable2 --delimiter=...``); without a header it is ``|``.

GPU-hours = GPUs x elapsed hours, kept as whole GPU-seconds so that sums are exact.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from zoneinfo import ZoneInfo

from contributions.sacct_fields import (
    FREE_TEXT,
    JOB_RE,
    REQUIRED_NAMES,
    REQUIRED_ONE_OF,
    canonical_field,
    count_tasks,
    gpus_by_type,
    header_cells,
    header_delimiter,
    parse_elapsed,
    split_by_type,
)

# Jobs in these states have ended: their allocation is counted.
FINISHED = frozenset(
    {
        "COMPLETED",
        "FAILED",
        "CANCELLED",
        "TIMEOUT",
        "NODE_FAIL",
        "PREEMPTED",
        "OUT_OF_MEMORY",
        "BOOT_FAIL",
        "DEADLINE",
        "SPECIAL_EXIT",
        # With --duplicates each requeued run is listed, with its own Submit: it ran.
        "REQUEUED",
    }
)
# Left out in a report, at most this many rows for each reason (the counts are complete).
EXAMPLES_PER_REASON = 20

HOURS = Decimal(3600)
UNKNOWN = ("Unknown", "None", "")


class SacctError(ValueError):
    """A malformed export: the whole import is refused. ``line`` is 1-based."""

    def __init__(self, line: int, message: str):
        super().__init__(f"line {line}: {message}")
        self.line = line


@dataclass
class Aggregate:
    """What one account delivered on one accelerator type."""

    account: str
    accelerator: str
    allocations: int = 0
    gpu_seconds: int = 0
    first_start: datetime | None = None
    last_end: datetime | None = None

    @property
    def gpu_hours(self) -> Decimal:
        return gpu_hours(self.gpu_seconds)

    def add(self, count: int, gpu_seconds: int, start: datetime, end: datetime) -> None:
        self.allocations += count
        self.gpu_seconds += gpu_seconds
        if self.first_start is None or start < self.first_start:
            self.first_start = start
        if self.last_end is None or end > self.last_end:
            self.last_end = end


@dataclass
class LeftOut:
    line: int
    job: str
    reason: str


@dataclass
class Reading:
    """An export read: aggregates, what was left out and why, and the export's hash."""

    sha256: str
    lines: int = 0
    steps: int = 0
    duplicates: int = 0
    allocations: int = 0
    by_account: Counter = field(default_factory=Counter)  # distinct allocations per account
    unmapped: Counter = field(default_factory=Counter)  # allocations of accounts left out
    accounts: dict[str, str] = field(default_factory=dict)  # the member each is credited to
    # Each allocation counted: (cluster, raw job id, submit) -> (account, tasks,
    # [(accelerator type, GPU-seconds)], start, end), so that an import can leave out
    # what an earlier export of the same facility counted already.
    allocs: dict = field(default_factory=dict)

    def drop(self, identities) -> int:
        """Leave out these allocations (counted by an earlier import): rebuild the
        aggregates without them; return how many tasks were dropped."""
        dropped = 0
        for identity in identities:
            account, tasks, _, _, _ = self.allocs.pop(identity)
            self.by_account[account] -= tasks
            if not self.by_account[account]:
                del self.by_account[account]
            self.allocations -= tasks
            dropped += tasks
        self.aggregates = {}
        for account, tasks, parts, start, end in self.allocs.values():
            for kind, gpu_seconds in parts:
                _add(self.aggregates, account, kind, tasks, gpu_seconds, start, end)
        return dropped

    aggregates: dict[tuple[str, str], Aggregate] = field(default_factory=dict)
    left_out: list[LeftOut] = field(default_factory=list)
    left_out_counts: Counter = field(default_factory=Counter)

    @property
    def gpu_seconds(self) -> int:
        return sum(a.gpu_seconds for a in self.aggregates.values())

    def leave_out(self, line: int, job: str, reason: str) -> None:
        self.left_out_counts[reason] += 1
        if self.left_out_counts[reason] <= EXAMPLES_PER_REASON:
            self.left_out.append(LeftOut(line, job, reason))


def gpu_hours(gpu_seconds: int) -> Decimal:
    """GPU-seconds as GPU-hours, to the millionth (exact sums are kept in seconds)."""
    return (Decimal(gpu_seconds) / HOURS).quantize(Decimal("0.000001"), ROUND_HALF_EVEN)


class Reader:
    """Reads one export for one facility."""

    def __init__(
        self,
        *,
        fields: list[str] | None = None,
        tz: str = "UTC",
        partitions: dict[str, str] | None = None,
        default_accelerator: str = "gpu",
        cluster: str = "",
    ):
        self.fields = fields
        self.zone = ZoneInfo(tz)
        self.partitions = partitions or {}
        self.default_accelerator = default_accelerator
        self.cluster = cluster

    def read(self, data: bytes) -> Reading:
        """Read a whole export. Raises :class:`SacctError` on the first malformed line."""
        reading = Reading(sha256=hashlib.sha256(data).hexdigest())
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            raise SacctError(line, "not UTF-8 text") from exc
        # Lines end at "\n" (or "\r\n") only: str.splitlines() would also break a row at
        # characters a free-text field (JobName, Comment) may hold, such as U+2028 or \x0c.
        self._read_lines(text.replace("\r\n", "\n").split("\n"), reading)
        return reading

    def _columns(self, first: str | None) -> tuple[dict[str, int], bool]:
        """Field positions, and whether the first line is a header to skip."""
        names = [canonical_field(n) for n in self.fields] if self.fields else None
        header = False
        self.delimiter, self.trailing = "|", None
        if first is not None:
            delimiter = header_delimiter(first)
            cells = [canonical_field(c) for c in header_cells(first, delimiter)]
            # A header line is used as it is (its order wins over the fields given).
            if names is None or sorted(cells) == sorted(names):
                names, header = cells, True
                # --parsable ends every line with the delimiter; --parsable2 does not.
                self.delimiter, self.trailing = delimiter, first.rstrip().endswith(delimiter)
        if names is None or (self.fields is None and not REQUIRED_NAMES.intersection(names)):
            # The first line names no field at all: it is a job, not a header.
            raise SacctError(1, "no header line: give the field list (--fields)")
        positions = {name: i for i, name in enumerate(names)}
        for choices in REQUIRED_ONE_OF:
            if not any(c in positions for c in choices):
                raise SacctError(1, f"the export lacks {' or '.join(choices)}")
        return positions, header

    def _read_lines(self, lines: list[str], reading: Reading) -> None:
        """Read the export line by line, in three steps: fit the line's cells to the
        header (``_Rows.fit``), check the whole row (``_Rows.parse``), then count its
        allocation or say why it is left out (``_Rows.count``)."""
        first = next((ln for ln in lines if ln.strip()), None)
        pos, header = self._columns(first)
        rows = _Rows(self, pos, reading)
        width, delimiter = len(pos), self.delimiter
        fit, parse, count = rows.fit, rows.parse, rows.count
        skipped_header = not header
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            if not skipped_header:
                skipped_header = True
                continue
            reading.lines += 1
            cells = line.split(delimiter)
            if len(cells) != width:
                cells = fit(cells, number)
            # Every row is checked whole, whatever becomes of it (a step, a repeat, a job
            # still running): a malformed export is refused, not partly read.
            try:
                row = parse(cells)
            except ValueError as exc:
                raise SacctError(number, str(exc)) from exc
            if row is None:
                reading.steps += 1  # a job step repeats its job's allocation
            else:
                count(number, cells, row)

    def _time(self, text: str, what: str) -> datetime:
        try:
            local = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{what} {text!r} is not a time (YYYY-MM-DDTHH:MM:SS)") from None
        try:
            if local.tzinfo is not None:
                return local.astimezone(UTC)
            return local.replace(tzinfo=self.zone).astimezone(UTC)
        except OverflowError:
            raise ValueError(f"{what} {text!r} is out of range") from None


class _Rows:
    """The rows of one export, read against its header: where each field stands, the
    allocations seen, and the texts parsed already (steps repeat their job's times,
    durations and TRES: each text is parsed once)."""

    __slots__ = (
        "durations",
        "free",
        "i_account",
        "i_cluster",
        "i_elapsed",
        "i_elapsed_raw",
        "i_end",
        "i_job",
        "i_partition",
        "i_raw",
        "i_start",
        "i_state",
        "i_submit",
        "i_tres",
        "pos",
        "reader",
        "reading",
        "seen",
        "times",
        "tres",
        "width",
    )

    def __init__(self, reader: Reader, pos: dict[str, int], reading: Reading):
        self.reader, self.reading, self.pos, self.width = reader, reading, pos, len(pos)
        self.free = [i for name, i in sorted(pos.items(), key=lambda p: p[1]) if name in FREE_TEXT]
        col = pos.get
        self.i_job, self.i_raw = col("JobID"), col("JobIDRaw")
        self.i_account, self.i_state = pos["Account"], pos["State"]
        self.i_start, self.i_end = pos["Start"], pos["End"]
        self.i_elapsed, self.i_elapsed_raw = col("Elapsed"), col("ElapsedRaw")
        self.i_tres, self.i_cluster = pos["AllocTRES"], col("Cluster")
        self.i_submit, self.i_partition = col("Submit"), col("Partition")
        self.seen: set[tuple[str, str, str]] = set()
        self.times: dict[str, datetime] = {}
        self.durations: dict[str, int] = {}
        self.tres: dict[str, tuple[int | None, dict[str, int]]] = {}

    def fit(self, cells: list[str], number: int) -> list[str]:
        """A line's cells, when there are not as many as the header names: a trailing
        delimiter dropped, the delimiters inside the one free-text field joined again.
        Raises :class:`SacctError` when the line cannot be read unambiguously."""
        width, free, delimiter = self.width, self.free, self.reader.delimiter
        if len(cells) > width and cells[-1] == "" and self.reader.trailing is not False:
            cells.pop()  # --parsable: a trailing delimiter
        if len(cells) > width and len(free) == 1:
            # The extra delimiters belong to the one free-text field: read the line
            # from both ends.
            i, extra = free[0], len(cells) - width
            cells[i : i + extra + 1] = [delimiter.join(cells[i : i + extra + 1])]
        elif len(cells) > width and free:
            names = " and ".join(n for n, j in self.pos.items() if j in free)
            raise SacctError(
                number,
                f"expected {width} fields, found {len(cells)}: {delimiter!r} stands inside "
                f"one of {names}, and which one cannot be told. Export again with "
                "sacct --parsable2 --delimiter=<a character no field holds> (keeping the "
                "header line), or leave the free-text fields out of --format",
            )
        if len(cells) != width:
            raise SacctError(number, f"expected {width} fields, found {len(cells)}")
        return cells

    def parse(self, cells: list[str]):
        """Check a row whole: ``None`` for a job step, else ``(job text, tasks, state,
        elapsed seconds, GPU total, typed GPUs, start, end)``. Raises ValueError."""
        job_text = cells[self.i_job] if self.i_job is not None else cells[self.i_raw]
        m = JOB_RE.fullmatch(job_text)
        if m is None:
            raise ValueError(f"JobID {job_text!r} is not a SLURM job id")
        tasks = count_tasks(m["tasks"]) if m["tasks"] else 1
        state = cells[self.i_state].split(" ", 1)[0]
        if not state:
            raise ValueError("State is empty")
        i = self.i_elapsed_raw
        if i is not None and cells[i] != "":
            if not (cells[i].isascii() and cells[i].isdigit()):
                raise ValueError(f"ElapsedRaw {cells[i]!r} is not seconds")
            elapsed = int(cells[i])
        elif self.i_elapsed is None:
            raise ValueError("ElapsedRaw is empty and there is no Elapsed")
        else:
            text = cells[self.i_elapsed]
            elapsed = self.durations.get(text)
            if elapsed is None:
                elapsed = self.durations[text] = parse_elapsed(text)
        tres = cells[self.i_tres]
        parsed = self.tres.get(tres)
        if parsed is None:
            parsed = self.tres[tres] = gpus_by_type(tres)
        start, end, times = cells[self.i_start], cells[self.i_end], self.times
        start = None if start in UNKNOWN else times.get(start) or self._when(start, "Start")
        end = None if end in UNKNOWN else times.get(end) or self._when(end, "End")
        if m["step"]:
            return None
        return job_text, tasks, state, elapsed, *parsed, start, end

    def _when(self, text: str, what: str) -> datetime:
        """A time not parsed before (``parse`` looks in ``times`` first)."""
        value = self.times[text] = self.reader._time(text, what)
        return value

    def count(self, number: int, cells: list[str], row: tuple) -> None:
        """Count a job's allocation once, or leave it out and say why."""
        job_text, tasks, state, elapsed, total, typed, start, end = row
        reading = self.reading
        raw = cells[self.i_raw] if self.i_raw is not None else job_text
        cluster = cells[self.i_cluster] if self.i_cluster is not None else self.reader.cluster
        submit = cells[self.i_submit] if self.i_submit is not None else ""
        identity = (cluster, raw, submit)
        if identity in self.seen:
            reading.duplicates += 1
            return
        self.seen.add(identity)
        if state not in FINISHED:
            reading.leave_out(number, job_text, f"not finished ({state})")
            return
        if start is None:
            # Cancelled before it started: no allocation was ever made.
            reading.leave_out(number, job_text, "never started")
            return
        if end is None:
            try:
                end = start + timedelta(seconds=elapsed)  # finished, End not recorded
            except OverflowError:
                raise SacctError(number, f"Elapsed {elapsed} s runs past year 9999") from None
        if total is None:
            total = sum(typed.values())
        if total == 0:
            reading.leave_out(number, job_text, "no GPUs allocated")
            return
        account = cells[self.i_account]
        if not account:
            reading.leave_out(number, job_text, "no account")
            return
        reading.allocations += tasks
        reading.by_account[account] += tasks
        partition = cells[self.i_partition] if self.i_partition is not None else ""
        untyped_kind = self.reader.partitions.get(partition, self.reader.default_accelerator)
        parts = split_by_type(typed, total, untyped_kind, tasks, elapsed)
        for kind, gpu_seconds in parts:
            _add(reading.aggregates, account, kind, tasks, gpu_seconds, start, end)
        reading.allocs[identity] = (account, tasks, parts, start, end)


def _add(aggregates, account, kind, tasks, gpu_seconds, start, end) -> None:
    key = (account, kind)
    agg = aggregates.get(key)
    if agg is None:
        agg = aggregates[key] = Aggregate(account, kind)
    agg.add(tasks, gpu_seconds, start, end)


def read_export(data: bytes, **options) -> Reading:
    """Read ``data`` (the bytes of an export) with :class:`Reader` options."""
    return Reader(**options).read(data)
