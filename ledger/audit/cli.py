"""The command line: ``python -m ledger.audit
verify|checkpoint|inclusion|consistency|tlog-proof``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from ledger.audit.artefacts import check_artefact
from ledger.audit.bundle import BundleError
from ledger.audit.phases import verify
from ledger.audit.result import Extension, Result
from ledger.core import merkle
from ledger.core.note import NoteError
from ledger.core.policy import Policy, PolicyError, parse_policy

# Exit status when nothing failed but some checks could not be made (a selection, a
# range that does not start at index 0): not 0, which means everything was verified.
PARTIAL = 3


def _progress_bar() -> Callable[[int, int], None] | None:
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int) -> None:
        share = done / total if total else 1.0
        bar = "#" * int(share * 30)
        end = "\n" if done >= total else ""
        print(
            f"\rentries {done:>12,}/{total:,} [{bar:<30}] {share:4.0%}",
            end=end,
            file=sys.stderr,
            flush=True,
        )

    return show


def parser(prog: str = "python -m ledger.audit", what: str = "") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="Verify an audit export" + what + ", a signed checkpoint, an RFC 9162 "
        "inclusion or consistency proof, or a C2SP tlog-proof, offline (Python and PyNaCl "
        "only).",
        epilog="Exit status: 0 everything held and could be checked; 1 something failed; "
        "3 nothing failed but some checks could not be made on this bundle (listed as SKIP); "
        "2 usage error.",
    )
    sub = p.add_subparsers(dest="action", required=True)
    v = sub.add_parser("verify", help="Check a whole audit export (zip file or directory).")
    v.add_argument(
        "bundle", type=Path, help="The export: its zip file, or the directory it was unpacked into."
    )
    v.add_argument(
        "--vkey",
        required=True,
        help=(
            "The log's verifier key, name+hex8+base64: any key the log has had (its "
            "rotations are followed from the genesis)."
        ),
    )
    v.add_argument(
        "--workers",
        type=int,
        default=None,
        help="Processes checking signatures (default: one per core).",
    )
    w = sub.add_parser(
        "copy",
        help="Check a log's copy as a witness's mirror writes it (every entry from index 0 "
        "and the log's checkpoint).",
    )
    w.add_argument("copy", type=Path, help="The copy's directory (or a zip of it).")
    w.add_argument("--vkey", required=True, help="The log's verifier key, name+hex8+base64.")
    w.add_argument(
        "--workers",
        type=int,
        default=None,
        help="Processes checking signatures (default: one per core).",
    )
    v.add_argument("--policy", type=Path, help=POLICY_HELP)
    c = sub.add_parser("checkpoint", help="Check a C2SP signed checkpoint.")
    c.add_argument("note", type=Path, help="The signed note, as a file.")
    c.add_argument("--vkey", required=True, help="The log's verifier key, name+hex8+base64.")
    c.add_argument("--origin", default=None, help="Require this origin line.")
    i = sub.add_parser("inclusion", help="Check an RFC 9162 inclusion proof.")
    i.add_argument("--index", type=int, required=True, help="The leaf's index.")
    i.add_argument("--size", type=int, required=True, help="The size of the tree it is in.")
    i.add_argument("--leaf", type=Path, help="The leaf bytes (hashed as RFC 9162 leaves are).")
    i.add_argument("--leaf-hash", help="The leaf hash, hex or base64.")
    i.add_argument("--proof", type=Path, required=True, help="JSON or one hash per line.")
    i.add_argument("--root", help="The root hash, hex or base64.")
    i.add_argument("--checkpoint", type=Path, help="A signed checkpoint (with --vkey).")
    i.add_argument("--vkey")
    k = sub.add_parser("consistency", help="Check an RFC 9162 consistency proof.")
    k.add_argument("--old", type=int, help="The older tree's size.")
    k.add_argument("--new", type=int, help="The newer tree's size.")
    k.add_argument("--proof", type=Path, required=True, help="JSON or one hash per line.")
    k.add_argument("--old-root")
    k.add_argument("--new-root")
    k.add_argument("--old-checkpoint", type=Path)
    k.add_argument("--new-checkpoint", type=Path)
    k.add_argument("--vkey")
    t = sub.add_parser(
        "tlog-proof",
        help="Check a C2SP tlog-proof file: an entry, its inclusion proof and the "
        "cosigned checkpoint, against your policy.",
    )
    t.add_argument("proof", type=Path, help="The .tlog-proof file.")
    t.add_argument(
        "--leaf",
        type=Path,
        required=True,
        help="The entry's leaf bytes (the API's `leaf`, base64-decoded).",
    )
    t.add_argument("--policy", type=Path, required=True, help=POLICY_HELP)
    t.add_argument(
        "--vkey",
        action="append",
        default=[],
        help="A log verifier key to accept beside the policy's log lines (repeatable).",
    )
    t.add_argument("--origin", default=None, help="Require this origin line.")
    return p


POLICY_HELP = (
    "Your own C2SP tlog-policy file (log, witness, group and quorum lines): the "
    "checkpoint must carry the cosignatures its quorum asks for. Never take it from the "
    "log."
)


def read_policy(path: Path | None) -> Policy | None:
    """The policy file, read as bytes (``None`` without one)."""
    if path is None:
        return None
    try:
        return parse_policy(Path(path).read_bytes())
    except OSError as exc:
        raise PolicyError(f"{path}: {exc.strerror or exc}") from exc
    except PolicyError as exc:
        raise PolicyError(f"{path}: {exc}") from exc


def run(
    argv: list[str] | None = None,
    extensions: Sequence[Extension] = (),
    prog: str | None = None,
    what: str = "",
) -> int:
    args = parser(prog or "python -m ledger.audit", what).parse_args(argv)
    try:
        policy = read_policy(getattr(args, "policy", None))
    except PolicyError as exc:
        print(f"FAIL the policy: {exc}")
        return 2
    if args.action == "verify":
        result = verify(
            args.bundle,
            args.vkey,
            extensions=extensions,
            workers=args.workers,
            progress=_progress_bar(),
            policy=policy,
        )
    elif args.action == "copy":
        from ledger.audit.copy import verify_copy

        result = verify_copy(args.copy, args.vkey, workers=args.workers, progress=_progress_bar())
    else:
        result = Result()
        try:
            result.checks.extend(check_artefact(args, policy))
        except (BundleError, NoteError, merkle.ProofError, OSError, ValueError) as exc:
            result.fail(str(exc))
    for line in result.checks:
        print(f"ok   {line}")
    for line in result.skipped:
        print(f"SKIP {line}")
    for line in result.failures:
        print(f"FAIL {line}")
    for line in result.notes:
        print(f"NOTE {line}")
    if not result.ok:
        print(f"NOT VERIFIED: {len(result.failures)} failures")
        return 1
    if result.skipped:
        print(f"VERIFIED IN PART: {len(result.skipped)} checks could not be made on this bundle")
        return PARTIAL
    print("VERIFIED")
    return 0
