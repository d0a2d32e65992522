"""`ledger verify`'s checks of the checkpoints and of the key registry, against the
tree rebuilt and the keyring replayed from the entries (``ledger.verify``).

A checkpoint is checked under the log key for its size: the key valid at index
``size``, which after a rotation the tree holds is the new key.
"""

from __future__ import annotations

from itertools import pairwise
from typing import TYPE_CHECKING

from django.db import connection

from ledger.core import merkle
from ledger.core.keyring import Keyring
from ledger.core.note import NoteError, Verifier, key_id, open_checkpoint
from ledger.errors import LedgerError
from ledger.models import Checkpoint, Entry, Key
from ledger.proofs import consistency_proof

if TYPE_CHECKING:
    from ledger.verify import Report


def top_index() -> int:
    """The log's top index now (-1 for an empty log)."""
    with connection.cursor() as cur:
        cur.execute(f"SELECT MAX({connection.ops.quote_name('index')}) FROM {Entry._meta.db_table}")
        top = cur.fetchone()[0]
    return -1 if top is None else top


def checkpoints_beyond(last: int, keyring: Keyring, report: Report) -> int:
    """Check the checkpoints beyond the entries verified; the log's top index now."""
    # A checkpoint beyond the tree is either being published right now (the tree has
    # grown meanwhile) or is not the log's: its signature is checked either way.
    still = top_index()
    for cp in Checkpoint.objects.filter(tree_size__gt=last + 1).order_by("tree_size"):
        check_checkpoint_signature(cp, keyring, report)
        if cp.tree_size > still + 1:
            report.problems.append(
                f"checkpoint at size {cp.tree_size} is beyond the tree ({still + 1} entries)"
            )
    return still


def check_checkpoint_signature(cp: Checkpoint, keyring: Keyring, report: Report):
    """The checkpoint's note, if the log key for its size (the one valid at index
    ``size``: after a rotation the tree holds, the new key) signed it and it matches its
    row."""
    where = f"checkpoint at size {cp.tree_size}"
    log_key = keyring.log_key_for_size(cp.tree_size)
    if log_key is None:
        report.problems.append(f"{where}: no log key registered by the entries")
        return None
    verifier = Verifier(log_key.name, key_id(log_key.name, log_key.public_key), log_key.public_key)
    try:
        body = open_checkpoint(cp.note, verifier, origin=log_key.name)
    except NoteError as exc:
        report.problems.append(f"{where}: {exc}")
        return None
    if body.size != cp.tree_size or body.root != bytes(cp.root_hash):
        report.problems.append(f"{where}: the stored size or root differs from the signed note")
        return None
    return body


def check_checkpoint(cp: Checkpoint, root: bytes, keyring: Keyring, report: Report) -> None:
    body = check_checkpoint_signature(cp, keyring, report)
    if body is not None and body.root != root:
        report.problems.append(
            f"checkpoint at size {cp.tree_size}: root differs from the tree rebuilt from the entries"
        )


def check_consistency(cps: list[Checkpoint], report: Report) -> None:
    for old, new in pairwise(cps):
        if new.tree_size > report.size:
            break
        try:
            proof = consistency_proof(old.tree_size, new.tree_size)
            merkle.verify_consistency(
                old.tree_size, new.tree_size, bytes(old.root_hash), bytes(new.root_hash), proof
            )
        except (merkle.ProofError, LedgerError) as exc:
            report.problems.append(
                f"checkpoints at sizes {old.tree_size} and {new.tree_size} are not consistent: {exc}"
            )


def check_registry(keyring: Keyring, report: Report) -> None:
    """The key registry table must be exactly what the key entries say."""
    stored = {k.fingerprint: k for k in Key.objects.all()}
    for fp, state in keyring.keys.items():
        row = stored.pop(fp, None)
        if row is None:
            report.problems.append(
                f"key {fp[:16]}… is registered by entries but not in the registry"
            )
            continue
        if (
            bytes(row.public_key) != state.public_key
            or row.kind != state.kind
            or row.owner != state.owner
            or row.name != state.name
            or row.registered_in != state.registered_in
            or row.custody != state.custody
            or row.valid_from != state.valid_from
            or row.revoked_at != state.revoked_at
        ):
            report.problems.append(f"key {fp[:16]}… in the registry differs from its entries")
    for fp in stored:
        report.problems.append(f"key {fp[:16]}… is in the registry but no entry registers it")
