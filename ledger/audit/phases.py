"""``verify``: a bundle's checks, phase by phase, in the order ``ledger.audit`` lists them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from ledger.audit.bundle import (
    ENTRIES,
    MANIFEST,
    UNREADABLE,
    Bundle,
    BundleError,
    Description,
    check_manifest,
    read_description,
)
from ledger.audit.checkpoints import check_consistency, check_cosigned, signed_roots
from ledger.audit.entries import Read, read_entries
from ledger.audit.keys import KeyHistory, key_entries
from ledger.audit.logkeys import LogKeys, log_keys
from ledger.audit.result import Extension, Result
from ledger.audit.tree import RangeTree, Selection, frontier
from ledger.core.note import NoteError, Verifier, open_note, parse_verifier_key, verifier_key
from ledger.core.policy import Policy


def verify(
    path: Path,
    vkey: str,
    *,
    extensions: Sequence[Extension] = (),
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    policy: Policy | None = None,
) -> Result:
    """Check the bundle at ``path`` under the log's verifier key ``vkey``; with ``policy``
    (the member's own C2SP tlog-policy), its anchor checkpoint must meet the quorum."""
    result = Result()
    try:
        bundle = Bundle(path)
    except BundleError as exc:
        result.fail(str(exc))
        return result
    try:
        _verify(bundle, vkey, result, extensions, workers, progress, policy)
    except BundleError as exc:
        result.fail(str(exc))
    except UNREADABLE as exc:
        result.fail(f"the bundle cannot be read: {type(exc).__name__}: {exc}")
    finally:
        bundle.close()
    result.close()
    return result


def _verify(
    bundle: Bundle, vkey: str, result: Result, extensions, workers, progress, policy
) -> None:
    # 0. The log's keys: the genesis key and its rotations; the pinned key among them.
    chain = log_keys(bundle, _verifier(vkey))
    result.checks.append(chain.describe())
    # 1. The MANIFEST and the files it lists; what the export holds.
    origin, export_id, listed = check_manifest(bundle, chain.verifiers(), result)
    plan = read_description(bundle, origin, export_id)
    _manifest_by_anchor_key(bundle, chain, plan.anchor)
    # 2. The checkpoints.
    roots = signed_roots(bundle, chain, origin, result)
    if plan.anchor not in roots:
        raise BundleError(f"checkpoints/{plan.anchor}.note (the anchor): missing or not valid")
    anchor_key = chain.for_size(plan.anchor)
    check_cosigned(
        bundle, plan.anchor, origin, verifier_key(origin, anchor_key.public_key), policy, result
    )
    end_proofs = check_consistency(bundle, roots, plan.end, result)
    # 3. The key history, admitted as the entries are read.
    keys = key_entries(bundle, plan.anchor, roots[plan.anchor], plan.end, result)
    history = KeyHistory(keys, chain.genesis, result)
    _skipped(plan, result)
    total = plan.total()
    # 4 and 5. The entries, and the tree rebuilt from them or each proven in the anchor.
    if plan.ranged:
        tree = RangeTree(frontier(bundle, plan.first), roots, plan, result)
    else:
        tree = Selection(bundle, roots[plan.anchor], plan, result)
    read = read_entries(bundle, total, history, tree, extensions, workers, progress, result)
    history.advance(plan.end)
    history.report()
    if ENTRIES in listed and (read.size, read.digest.hexdigest()) != listed[ENTRIES]:
        result.fail(f"{ENTRIES}: its size or SHA-256 is not the MANIFEST's")
    _key_entries_missing(plan, history, read, result)
    tree.finish(read.count, total, end_proofs, plan.anchor, roots)
    _leaf_failures(read, result)
    # 6. What the callers add.
    _finish_extensions(bundle, extensions, result)


def _verifier(vkey: str) -> Verifier:
    try:
        return parse_verifier_key(vkey)
    except NoteError as exc:
        raise BundleError(f"the verifier key: {exc}") from exc


def _manifest_by_anchor_key(bundle: Bundle, chain: LogKeys, anchor: int) -> None:
    """The MANIFEST is signed by the log key of the anchor checkpoint."""
    key = chain.for_size(anchor)
    try:
        open_note(bundle.read(MANIFEST), [key])
    except NoteError as exc:
        raise BundleError(
            f"MANIFEST is not signed by the log key of the anchor checkpoint "
            f"({key.name}+{key.key_id.hex()}): {exc}"
        ) from exc


def _skipped(plan: Description, result: Result) -> None:
    """What this bundle cannot show, however honest."""
    if plan.first > 0:
        result.skipped.append(
            f"the key history before index {plan.first:,}: an export that does not "
            f"start at index 0 cannot show that no key entry before it is "
            f"missing"
        )
    if not plan.ranged:
        result.skipped.append(
            "the selection's completeness: each entry is proven in the log, "
            "not that every entry concerning the scope was selected"
        )


def _key_entries_missing(
    plan: Description, history: KeyHistory, read: Read, result: Result
) -> None:
    """A range holds every key entry in it that the key history holds."""
    if not plan.ranged:
        return
    for index in sorted(history.entries):
        if plan.first <= index < plan.end and index not in read.seen_keys:
            result.fail(f"keys.jsonl holds the key entry at index {index}, which {ENTRIES} lacks")


def _leaf_failures(read: Read, result: Result) -> None:
    for index, reason in read.failures:
        result.fail(f"{ENTRIES}: entry {index}: {reason}", "entries")
    if not read.failures:
        result.checks.append(
            f"{read.count:,} entries: layout, index and signature by the key valid at their index"
        )


def _finish_extensions(bundle: Bundle, extensions: Sequence[Extension], result: Result) -> None:
    for ext in extensions:
        try:
            ext.finish(bundle, result)
        except UNREADABLE as exc:
            result.fail(
                f"the report cannot be read ({type(ext).__name__}): {type(exc).__name__}: {exc}"
            )
