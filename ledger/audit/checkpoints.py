"""Check 2: every checkpoint is signed by the log key for its size (the one valid at
index ``size``, after any rotation the tree holds), for the log's origin, and each
extends the one before it (RFC 9162 consistency proofs);
with the member's own policy, the anchor checkpoint is cosigned by a quorum of its
witnesses."""

from __future__ import annotations

import itertools

from ledger.audit.bundle import DECIMAL, Bundle, BundleError, hash_list, non_negative
from ledger.audit.logkeys import LogKeys
from ledger.audit.result import Result
from ledger.core import merkle
from ledger.core.note import NoteError, open_checkpoint
from ledger.core.policy import Policy

NOT_CHECKED = (
    "cosignatures not checked: no --policy given (pass your own C2SP tlog-policy file to "
    "require a quorum of witnesses on the checkpoint)"
)


def signed_roots(bundle: Bundle, keys: LogKeys, origin: str, result: Result) -> dict[int, bytes]:
    """The root at each size a valid ``checkpoints/<size>.note`` signs."""
    roots: dict[int, bytes] = {}
    for name in bundle.names():
        if not name.startswith("checkpoints/"):
            continue
        stem = name[len("checkpoints/") :].removesuffix(".note")
        if not DECIMAL.fullmatch(stem) or not name.endswith(".note"):
            result.fail(f"{name}: not a checkpoints/<size>.note file")
            continue
        verifier = keys.for_size(int(stem))
        try:
            cp = open_checkpoint(bundle.read(name), verifier, origin=origin)
        except NoteError as exc:
            result.fail(
                f"{name}: not a checkpoint signed by the log key ({exc}); the log key for "
                f"its size is {verifier.name}+{verifier.key_id.hex()}"
            )
            continue
        if cp.size != int(stem):
            result.fail(f"{name}: the checkpoint is for tree size {cp.size}")
            continue
        roots[cp.size] = cp.root
    if roots:
        result.checks.append(
            f"{len(roots)} checkpoints signed by the log key for their size, sizes "
            f"{min(roots):,} to {max(roots):,}"
        )
    return roots


def check_consistency(
    bundle: Bundle, roots: dict[int, bytes], end: int, result: Result
) -> dict[int, list[bytes]]:
    """Check consistency.jsonl; return the proofs from ``end`` (the export's end, when no
    checkpoint has that size) to later sizes, by the later size."""
    proven: set[tuple[int, int]] = set()
    end_proofs: dict[int, list[bytes]] = {}
    if not bundle.has("consistency.jsonl"):
        raise BundleError("consistency.jsonl: missing")
    for number, item in bundle.json_lines("consistency.jsonl"):
        old, new = non_negative(item.get("old"), "old"), non_negative(item.get("new"), "new")
        proof = hash_list(item.get("proof"), f"consistency.jsonl line {number} proof")
        if old == end and old not in roots:
            end_proofs[new] = proof
            continue
        if old not in roots or new not in roots:
            result.fail(f"consistency.jsonl line {number}: no checkpoint of size {old} or {new}")
            continue
        try:
            merkle.verify_consistency(old, new, roots[old], roots[new], proof)
        except merkle.ProofError as exc:
            result.fail(
                f"consistency.jsonl line {number}: the checkpoint of size {new:,} does "
                f"not extend the one of size {old:,} ({exc})"
            )
            continue
        proven.add((old, new))
    sizes = sorted(roots)
    missing = [(a, b) for a, b in itertools.pairwise(sizes) if (a, b) not in proven]
    for a, b in missing:
        result.fail(f"no valid consistency proof from checkpoint {a:,} to {b:,}")
    if len(sizes) > 1 and not missing:
        result.checks.append(f"{len(sizes) - 1} consistency proofs between consecutive checkpoints")
    return end_proofs


def check_cosigned(
    bundle: Bundle, anchor: int, origin: str, vkey: str, policy: Policy | None, result: Result
) -> None:
    """The anchor checkpoint, which every proof leads to, meets ``policy``'s quorum."""
    if policy is None:
        result.notes.append(NOT_CHECKED)
        return
    name = f"checkpoints/{anchor}.note"
    verdict = policy.check(bundle.read(name), origin, log_vkeys=(vkey,))
    if not verdict.ok:
        result.fail(f"{name} (the anchor) is below your policy's quorum: {verdict.why}")
    elif verdict.cosigned_by:
        result.checks.append(
            f"{name} (the anchor): cosigned by {', '.join(verdict.cosigned_by)}, your "
            f"policy's quorum {policy.quorum} met"
        )
    else:
        result.checks.append(f"{name} (the anchor): your policy asks for no cosignature")
