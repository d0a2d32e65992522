"""A witness's verified copy of a log, written out: ``python -m ledger.witness export``.

The copy is a directory of three files (format ``consortium-ledger/log-copy/v1``,
described in docs/witness.md):

- ``entries.jsonl``: the exact leaf bytes of every entry from index 0, one per line, in
  index order (as an audit export's ``entries.jsonl``);
- ``checkpoint.note``: the checkpoint, signed by the log, whose root the copy's tree has;
- ``copy.json``: ``format``, ``origin``, ``size`` and ``root`` (base64).

``consortium-verify.pyz copy <dir> --vkey <log key>`` (``python -m ledger.audit copy``)
checks it with the offline verifier's own checks, and the entries can be read back in
order by anyone who re-ingests the log.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ledger.core.note import b64
from ledger.witness.state import State

FORMAT = "consortium-ledger/log-copy/v1"


class ExportError(Exception):
    pass


def write_copy(state: State, origin: str, out: Path) -> int:
    """Write the verified copy of ``origin`` to the new directory ``out``; its size."""
    held = state.held(origin)
    if held.size == 0 or held.checkpoint is None:
        raise ExportError(f"this state holds no verified copy of {origin!r}")
    out.mkdir(parents=False, exist_ok=False)
    count = 0
    with open(out / "entries.jsonl", "wb") as f:
        for leaf in state.leaves(origin, held.size):
            if b"\n" in leaf:
                raise ExportError(f"entry {count} holds a newline: not a JCS leaf")
            f.write(leaf + b"\n")
            count += 1
        f.flush()
        os.fsync(f.fileno())
    (out / "checkpoint.note").write_text(held.checkpoint)
    meta = {"format": FORMAT, "origin": origin, "size": held.size, "root": b64(held.root)}
    (out / "copy.json").write_text(json.dumps(meta, indent=1) + "\n")
    return count
