"""The fields of a SLURM accounting export, one at a time: the header's names and
delimiter, job ids and array task lists, elapsed times, and the GPUs of an AllocTRES
string. Pure Python: no Django (``contributions.sacct`` reads whole exports with them)."""

from __future__ import annotations

import re

REQUIRED_ONE_OF = (
    ("JobID", "JobIDRaw"),
    ("Account",),
    ("State",),
    ("Start",),
    ("End",),
    ("Elapsed", "ElapsedRaw"),
    ("AllocTRES",),
)
REQUIRED_NAMES = frozenset(name for choices in REQUIRED_ONE_OF for name in choices)
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

JOB_RE = re.compile(
    r"(?P<job>[0-9]+)"
    r"(?:_(?P<task>[0-9]+|\[(?P<tasks>[0-9,\-%]+)\])|\+(?P<het>[0-9]+))?"
    r"(?P<step>\..+)?"
)
_TYPE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_ELAPSED_RE = re.compile(r"(?:([0-9]+)-)?(?:([0-9]+):)?([0-9]+):([0-9]+)(?:\.[0-9]+)?")


# --- the header ---------------------------------------------------------------------------------


def canonical_field(name: str) -> str:
    """Field names as sacct spells them (``--format`` takes them in any case)."""
    return _KNOWN_FIELDS.get(name.strip().lower(), name)


def header_delimiter(first: str | None) -> str:
    """The delimiter a header line uses (``|`` unless it shows another)."""
    if first is None or "|" in first:
        return "|"
    m = _HEADER_DELIMITER_RE.match(first)
    return m[1] if m else "|"


def header_cells(line: str, delimiter: str = "|") -> list[str]:
    cells = line.rstrip("\n").split(delimiter)
    if cells and cells[-1] == "":
        cells.pop()
    return cells


# --- the values ---------------------------------------------------------------------------------


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


def split_by_type(
    typed: dict[str, int], total: int, untyped_kind: str, tasks: int, elapsed: int
) -> list[tuple[str, int]]:
    """An allocation's GPU-seconds per accelerator type: the typed entries first (they
    say which types the total is made of, up to that total), the rest as ``untyped_kind``."""
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
    return parts
