"""Single standard artefacts: a C2SP signed checkpoint, an RFC 9162 inclusion proof, an
RFC 9162 consistency proof, a C2SP tlog-proof, each read from files and the command
line's values."""

from __future__ import annotations

import base64
import binascii
import json
from pathlib import Path

from ledger.audit.bundle import BundleError
from ledger.core import merkle
from ledger.core.envelope import EnvelopeError, parse_leaf
from ledger.core.note import Checkpoint, NoteError, open_checkpoint, parse_verifier_key
from ledger.core.policy import Policy
from ledger.core.tlogproof import verify_proof


def _read_hash(text: str, what: str) -> bytes:
    text = text.strip()
    if not text:
        raise BundleError(f"{what}: empty, not a hash")
    try:
        raw = bytes.fromhex(text) if len(text) == 64 else base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise BundleError(f"{what}: not hex or base64") from exc
    if len(raw) != 32:
        raise BundleError(f"{what}: not 32 bytes")
    return raw


def read_proof(path: Path) -> list[bytes]:
    """A proof file: JSON (a list of hashes, or an object with ``proof`` or ``hashes``, as
    the API returns it), or one base64 or hex hash per line (any line end: each hash is
    checked against the root, so spacing cannot change what is proven)."""
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BundleError(f"{path}: not UTF-8") from exc
    try:
        value = json.loads(text)
    except ValueError:
        # Every line is a hash: a blank one is garbage in a proof, not padding.
        return [
            _read_hash(line, f"{path} line {n}")
            for n, line in enumerate(text.splitlines(), start=1)
        ]
    if isinstance(value, dict):
        value = value.get("proof", value.get("hashes"))
    if not isinstance(value, list):
        raise BundleError(f"{path}: not a list of hashes")
    return [_read_hash(str(h), f"{path}[{i}]") for i, h in enumerate(value)]


def read_checkpoint(path: Path, vkey: str, origin: str | None = None) -> Checkpoint:
    """A signed checkpoint from a file, read as bytes: a text read would fold CRLF line
    ends into newlines and accept a note no other reader does."""
    verifier = parse_verifier_key(vkey)
    try:
        return open_checkpoint(Path(path).read_bytes(), verifier, origin=origin)
    except NoteError as exc:
        raise BundleError(f"{path}: {exc}") from exc


def _root(args, which: str = "") -> tuple[int | None, bytes]:
    """The size (if a checkpoint gives it) and root named by ``--<which>checkpoint`` or
    ``--<which>root``."""
    note = getattr(args, f"{which}checkpoint")
    if note is not None:
        if not args.vkey:
            raise BundleError("--vkey is needed to read a checkpoint")
        cp = read_checkpoint(note, args.vkey)
        return cp.size, cp.root
    root = getattr(args, f"{which}root")
    if root is None:
        raise BundleError(
            f"give --{which.replace('_', '-')}root or --{which.replace('_', '-')}checkpoint"
        )
    return None, _read_hash(root, f"--{which.replace('_', '-')}root")


def check_checkpoint(args) -> list[str]:
    cp = read_checkpoint(args.note, args.vkey, origin=args.origin)
    return [
        f"checkpoint of {cp.origin!r}: tree size {cp.size:,}, root "
        f"{base64.b64encode(cp.root).decode()}, signed by the key"
    ]


def check_inclusion(args) -> list[str]:
    size, root = _root(args)
    if size is not None and size != args.size:
        raise BundleError(f"the checkpoint is for size {size}, not --size {args.size}")
    if args.leaf is not None:
        leaf_hash = merkle.leaf_hash(Path(args.leaf).read_bytes())
    elif args.leaf_hash is not None:
        leaf_hash = _read_hash(args.leaf_hash, "--leaf-hash")
    else:
        raise BundleError("give --leaf or --leaf-hash")
    merkle.verify_inclusion(args.index, args.size, leaf_hash, read_proof(args.proof), root)
    return [f"leaf {leaf_hash.hex()} is at index {args.index:,} of the tree of size {args.size:,}"]


def check_consistency(args) -> list[str]:
    old_size, old_root = _root(args, "old_")
    new_size, new_root = _root(args, "new_")
    old = args.old if args.old is not None else old_size
    new = args.new if args.new is not None else new_size
    if old is None or new is None:
        raise BundleError("give --old and --new (or checkpoints)")
    if (old_size not in (None, old)) or (new_size not in (None, new)):
        raise BundleError("a checkpoint's size differs from --old/--new")
    merkle.verify_consistency(old, new, old_root, new_root, read_proof(args.proof))
    return [f"the tree of size {old:,} is a prefix of the tree of size {new:,}"]


def check_tlog_proof(args, policy: Policy) -> list[str]:
    """A tlog-proof file for the leaf in ``--leaf``, under the member's policy."""
    leaf = Path(args.leaf).read_bytes()
    for vkey in args.vkey:
        parse_verifier_key(vkey)  # a malformed key is named, not ignored
    done = verify_proof(
        Path(args.proof).read_bytes(), leaf, policy, origin=args.origin, log_vkeys=tuple(args.vkey)
    )
    if not done.ok:
        raise BundleError(f"{args.proof}: {done.why}")
    checks = list(done.checks)
    try:
        entry = parse_leaf(leaf, check_payload=False)
    except EnvelopeError:
        return checks  # a leaf of another log: its layout is that log's business
    if entry.index != done.index:
        raise BundleError(f"{args.leaf}: the leaf says index {entry.index}, the proof {done.index}")
    checks.append(
        f"the leaf is this ledger's entry {entry.index:,}: {entry.envelope['kind']}, "
        f"integrated {entry.integrated_time}"
    )
    return checks


def check_artefact(args, policy: Policy | None = None) -> list[str]:
    """Check one standard artefact; returns what was checked (raises on failure)."""
    if args.action == "tlog-proof":
        return check_tlog_proof(args, policy)
    if args.action == "checkpoint":
        return check_checkpoint(args)
    if args.action == "inclusion":
        return check_inclusion(args)
    return check_consistency(args)
