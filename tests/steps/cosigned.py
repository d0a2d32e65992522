"""Cosigned checkpoints for what members and auditors take away: witnesses' cosignatures
(made by ledger.witness cosigners) on the log's real checkpoints, served through
``ledger.services.cosigned_checkpoint``, and the members' own policy files."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from types import SimpleNamespace

from ledger import services
from ledger.core.note import split_note
from ledger.models import Checkpoint, Key
from ledger.witness.cosignature import Cosigner, generate_cosigner


def witnesses(*names: str) -> dict[str, Cosigner]:
    """A cosigner per policy name (their key names: ``<name>.witness.example``)."""
    return {name: generate_cosigner(f"{name.lower()}.witness.example") for name in names}


def cosign(note: str, *cosigners) -> str:
    """The note with each cosigner's cosignature line appended."""
    body, _ = split_note(note)
    now = int(time.time())
    return note + "".join(c.cosign(body, now) for c in cosigners)


def log_vkey() -> str:
    return Key.objects.get(kind="log").verifier_key


def policy_text(cosigners: dict[str, Cosigner], quorum: str, *, log: bool = True) -> str:
    """A member's policy: the log's key, each witness, and ``quorum`` (a group line and
    its name, or a name, or ``none``)."""
    lines = [f"log {log_vkey()}"] if log else []
    lines += [f"witness {n} {c.verifier.vkey()}" for n, c in cosigners.items()]
    *groups, name = quorum.split("\n")
    return "\n".join([*lines, *groups, f"quorum {name}"]) + "\n"


def write_policy(tmp: Path, cosigners, quorum: str) -> Path:
    """The policy as a file of its own (named by its quorum) in ``tmp``."""
    text = policy_text(cosigners, quorum)
    path = tmp / f"policy-{hashlib.sha256(text.encode()).hexdigest()[:12]}.txt"
    path.write_text(text)
    return path


def serve_cosigned(
    monkeypatch, *cosigners, size: int | None = None, meets: bool = True, fail_open: bool = False
) -> str:
    """Make the log serve its checkpoint at ``size`` (default: the latest) as cosigned by
    ``cosigners`` (meeting the log's adopted policy, or not, and then served under the
    fail-open setting, or not); returns the note served."""
    row = (
        Checkpoint.objects.order_by("-tree_size").first()
        if size is None
        else Checkpoint.objects.get(tree_size=size)
    )
    note = cosign(row.note, *cosigners)
    served = SimpleNamespace(
        checkpoint=row, note=note, policy="adopted", meets_policy=meets, fail_open=fail_open
    )
    monkeypatch.setattr(services, "cosigned_checkpoint", lambda: served)
    return note
