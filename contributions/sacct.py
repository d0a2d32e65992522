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
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from zoneinfo import ZoneInfo

REQUIRED_ONE_OF = (
    ("JobID", "JobIDRaw"),
    ("Account",),
    ("State",),
    ("Start",),
    ("End",),
    ("Elapsed", "ElapsedRaw"),
    ("AllocTRES",),
)
_REQUIRED_NAMES = frozenset(name for choices in REQUIRED_ONE_OF for name in choices)
# Fields whose text users or administrators write, which may hold the delimiter.
FREE_TEXT = (
    "JobName",
    "Comment",
    "AdminComment",
    "SystemComment",
    "Reason",
    "WorkDir",
    "SubmitLine",
    "Constraints",
    "Container",
    "Extra",
    "StdIn",
    "StdOut",
    "StdErr",
    "WCKey",
)
_HEADER_DELIMITER_RE = re.compile(r"\s*[A-Za-z][A-Za-z0-9_]*([^A-Za-z0-9_\s]+)[A-Za-z]")
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

_JOB_RE = re.compile(
    r"(?P<job>[0-9]+)"
    r"(?:_(?P<task>[0-9]+|\[(?P<tasks>[0-9,\-%]+)\])|\+(?P<het>[0-9]+))?"
    r"(?P<step>\..+)?"
)
_TYPE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_ELAPSED_RE = re.compile(r"(?:([0-9]+)-)?(?:([0-9]+):)?([0-9]+):([0-9]+)(?:\.[0-9]+)?")
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


def parse_elapsed(text: str) -> int:
    """``[D-]HH:MM:SS`` (or ``MM:SS``) as seconds."""
    m = _ELAPSED_RE.fullmatch(text.strip())
    if not m:
        raise ValueError(f"Elapsed {text!r} is not [D-]HH:MM:SS")
    days, hours, minutes, seconds = (int(g) if g else 0 for g in m.groups())
    if minutes >= 60 or seconds >= 60:
        raise ValueError(f"Elapsed {text!r} is not [D-]HH:MM:SS")
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def count_tasks(spec: str) -> int:
    """How many array tasks ``1-3,7`` (or ``0-15%4``: a throttle, not a count) names."""
    total = 0
    for part in spec.split("%", 1)[0].split(","):
        if not part:
            raise ValueError(f"array task list {spec!r} has an empty element")
        lo, _, hi = part.partition("-")
        first, last = int(lo), int(hi) if hi else int(lo)
        if last < first:
            raise ValueError(f"array task range {part!r} runs backwards")
        total += last - first + 1
    return total


def gpus_by_type(tres: str) -> tuple[int | None, dict[str, int]]:
    """The untyped GPU total of an AllocTRES string (``None`` if absent), and the typed
    counts. ``gres/gpumem`` and ``gres/gpuutil`` are not GPUs."""
    total = None
    typed: dict[str, int] = {}
    for item in tres.split(","):
        if not item.startswith("gres/gpu"):
            continue
        name, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"AllocTRES item {item!r} has no value")
        if name == "gres/gpu":
            total = _count(value, item)
        elif name.startswith("gres/gpu:"):
            kind = name[len("gres/gpu:") :]
            if not _TYPE_RE.fullmatch(kind):
                raise ValueError(
                    f"AllocTRES item {item!r} names no GPU type (up to 64 of a-z 0-9 _ . -)"
                )
            typed[kind] = typed.get(kind, 0) + _count(value, item)
        # gres/gpumem, gres/gpuutil and the like: not GPUs
    return total, typed


def _count(value: str, item: str) -> int:
    if not (value.isascii() and value.isdigit()):
        raise ValueError(f"AllocTRES item {item!r} is not a whole count")
    return int(value)


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
        names = [_canonical_field(n) for n in self.fields] if self.fields else None
        header = False
        self.delimiter, self.trailing = "|", None
        if first is not None:
            delimiter = _delimiter(first)
            cells = [_canonical_field(c) for c in _cells(first, delimiter)]
            # A header line is used as it is (its order wins over the fields given).
            if names is None or sorted(cells) == sorted(names):
                names, header = cells, True
                # --parsable ends every line with the delimiter; --parsable2 does not.
                self.delimiter, self.trailing = delimiter, first.rstrip().endswith(delimiter)
        if names is None or (self.fields is None and not _REQUIRED_NAMES.intersection(names)):
            # The first line names no field at all: it is a job, not a header.
            raise SacctError(1, "no header line: give the field list (--fields)")
        positions = {name: i for i, name in enumerate(names)}
        for choices in REQUIRED_ONE_OF:
            if not any(c in positions for c in choices):
                raise SacctError(1, f"the export lacks {' or '.join(choices)}")
        return positions, header

    def _read_lines(self, lines: list[str], reading: Reading) -> None:
        first = next((ln for ln in lines if ln.strip()), None)
        pos, header = self._columns(first)
        width = len(pos)
        col = pos.get
        i_job, i_raw = col("JobID"), col("JobIDRaw")
        i_account, i_state, i_start, i_end = pos["Account"], pos["State"], pos["Start"], pos["End"]
        i_elapsed, i_elapsed_raw = col("Elapsed"), col("ElapsedRaw")
        i_tres, i_cluster, i_submit, i_partition = (
            pos["AllocTRES"],
            col("Cluster"),
            col("Submit"),
            col("Partition"),
        )
        seen: set[tuple[str, str, str]] = set()
        aggregates = reading.aggregates
        # Steps repeat their job's times, durations and TRES: each text is parsed once.
        times: dict[str, datetime] = {}
        durations: dict[str, int] = {}
        tres_seen: dict[str, tuple[int | None, dict[str, int]]] = {}

        def when(text: str, what: str) -> datetime:
            value = times.get(text)
            if value is None:
                value = times[text] = self._time(text, what)
            return value

        skipped_header = not header
        delimiter, trailing = self.delimiter, self.trailing
        free = [i for name, i in sorted(pos.items(), key=lambda p: p[1]) if name in FREE_TEXT]
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            if not skipped_header:
                skipped_header = True
                continue
            reading.lines += 1
            cells = line.split(delimiter)
            if len(cells) > width and cells[-1] == "" and trailing is not False:
                cells.pop()  # --parsable: a trailing delimiter
            if len(cells) > width and len(free) == 1:
                # The extra delimiters belong to the one free-text field: read the line
                # from both ends.
                i, extra = free[0], len(cells) - width
                cells[i : i + extra + 1] = [delimiter.join(cells[i : i + extra + 1])]
            elif len(cells) > width and free:
                names = " and ".join(n for n, j in pos.items() if j in free)
                raise SacctError(
                    number,
                    f"expected {width} fields, found {len(cells)}: {delimiter!r} stands inside "
                    f"one of {names}, and which one cannot be told. Export again with "
                    "sacct --parsable2 --delimiter=<a character no field holds> (keeping the "
                    "header line), or leave the free-text fields out of --format",
                )
            if len(cells) != width:
                raise SacctError(number, f"expected {width} fields, found {len(cells)}")
            job_text = cells[i_job] if i_job is not None else cells[i_raw]
            # Every row is checked whole, whatever becomes of it (a step, a repeat, a job
            # still running): a malformed export is refused, not partly read.
            try:
                m = _JOB_RE.fullmatch(job_text)
                if m is None:
                    raise ValueError(f"JobID {job_text!r} is not a SLURM job id")
                tasks = count_tasks(m["tasks"]) if m["tasks"] else 1
                state = cells[i_state].split(" ", 1)[0]
                if not state:
                    raise ValueError("State is empty")
                if i_elapsed_raw is not None and cells[i_elapsed_raw] != "":
                    if not (cells[i_elapsed_raw].isascii() and cells[i_elapsed_raw].isdigit()):
                        raise ValueError(f"ElapsedRaw {cells[i_elapsed_raw]!r} is not seconds")
                    elapsed = int(cells[i_elapsed_raw])
                elif i_elapsed is not None:
                    text = cells[i_elapsed]
                    elapsed = durations.get(text)
                    if elapsed is None:
                        elapsed = durations[text] = parse_elapsed(text)
                else:
                    raise ValueError("ElapsedRaw is empty and there is no Elapsed")
                tres = cells[i_tres]
                parsed = tres_seen.get(tres)
                if parsed is None:
                    parsed = tres_seen[tres] = gpus_by_type(tres)
                total, typed = parsed
                start = None if cells[i_start] in UNKNOWN else when(cells[i_start], "Start")
                end = None if cells[i_end] in UNKNOWN else when(cells[i_end], "End")
            except ValueError as exc:
                raise SacctError(number, str(exc)) from exc
            if m["step"]:
                reading.steps += 1
                continue
            raw = cells[i_raw] if i_raw is not None else job_text
            cluster = cells[i_cluster] if i_cluster is not None else self.cluster
            submit = cells[i_submit] if i_submit is not None else ""
            identity = (cluster, raw, submit)
            if identity in seen:
                reading.duplicates += 1
                continue
            seen.add(identity)
            if state not in FINISHED:
                reading.leave_out(number, job_text, f"not finished ({state})")
                continue
            if start is None:
                # Cancelled before it started: no allocation was ever made.
                reading.leave_out(number, job_text, "never started")
                continue
            if end is None:
                try:
                    end = start + timedelta(seconds=elapsed)  # finished, End not recorded
                except OverflowError:
                    raise SacctError(number, f"Elapsed {elapsed} s runs past year 9999") from None
            if total is None:
                total = sum(typed.values())
            if total == 0:
                reading.leave_out(number, job_text, "no GPUs allocated")
                continue
            account = cells[i_account]
            if not account:
                reading.leave_out(number, job_text, "no account")
                continue
            reading.allocations += tasks
            reading.by_account[account] += tasks
            partition = cells[i_partition] if i_partition is not None else ""
            untyped_kind = self.partitions.get(partition, self.default_accelerator)
            counted = 0
            parts = []
            for kind, count in typed.items():
                count = min(count, total - counted)
                if count <= 0:
                    break
                parts.append((kind, tasks * count * elapsed))
                counted += count
            if counted < total:
                parts.append((untyped_kind, tasks * (total - counted) * elapsed))
            for kind, gpu_seconds in parts:
                _add(aggregates, account, kind, tasks, gpu_seconds, start, end)
            reading.allocs[identity] = (account, tasks, parts, start, end)

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


_KNOWN_FIELDS = {
    name.lower(): name
    for name in (
        "JobID",
        "JobIDRaw",
        "Account",
        "State",
        "Start",
        "End",
        "Elapsed",
        "ElapsedRaw",
        "AllocTRES",
        "Cluster",
        "Submit",
        "Partition",
        *FREE_TEXT,
    )
}


def _canonical_field(name: str) -> str:
    """Field names as sacct spells them (``--format`` takes them in any case)."""
    return _KNOWN_FIELDS.get(name.strip().lower(), name)


def _delimiter(first: str | None) -> str:
    """The delimiter a header line uses (``|`` unless it shows another)."""
    if first is None or "|" in first:
        return "|"
    m = _HEADER_DELIMITER_RE.match(first)
    return m[1] if m else "|"


def _cells(line: str, delimiter: str = "|") -> list[str]:
    cells = line.rstrip("\n").split(delimiter)
    if cells and cells[-1] == "":
        cells.pop()
    return cells


def _add(aggregates, account, kind, tasks, gpu_seconds, start, end) -> None:
    key = (account, kind)
    agg = aggregates.get(key)
    if agg is None:
        agg = aggregates[key] = Aggregate(account, kind)
    agg.add(tasks, gpu_seconds, start, end)


def read_export(data: bytes, **options) -> Reading:
    """Read ``data`` (the bytes of an export) with :class:`Reader` options."""
    return Reader(**options).read(data)
