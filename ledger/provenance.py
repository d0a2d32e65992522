"""Verify a directory of downloaded checkpoint files against a provenance bundle, offline.

Needs Python and PyNaCl only: no Django, no database, no network::

    python -m ledger.provenance verify <directory> --bundle bundle.json --vkey '<verifier key>' \
        [--policy <your C2SP tlog-policy file>]

What it checks, in order, and names what fails:

1. the bundle's checkpoint is a C2SP signed note by the log key for its size; the
   verifier key is that key or, when the log key was rotated, any key of the chain the
   bundle's ``log_keys`` entries show (the genesis and each ``log.key_rotated``, signed
   by the old key and the new, each included in the checkpoint's tree);
   with ``--policy``, it carries the cosignatures the policy's quorum asks for (without
   it, cosignatures are not checked, and the output says so);
2. the registration of the publishing key (a ``key.registered`` entry signed by the log
   key valid at its index) and the ``checkpoint.published`` entry (signed by the key
   registered there) are both in the tree that checkpoint commits to (RFC 9162
   inclusion proofs), with valid signatures for the log's origin;
3. the manifest's SHA-256 is the digest the entry publishes, and it lists exactly the
   files the entry lists;
4. every file in the directory has the size and SHA-256 the manifest gives, and no file
   is missing or extra.

Exit status 0 only when everything holds.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ledger.core import merkle
from ledger.core.envelope import EnvelopeError, key_fingerprint, parse_leaf, verify_leaf_signature
from ledger.core.keyring import Keyring, KeyringError, read_log_key_rotation
from ledger.core.note import (
    NoteError,
    Verifier,
    open_checkpoint,
    parse_checkpoint,
    parse_verifier_key,
    split_note,
    verifier_key,
)
from ledger.core.policy import Policy, PolicyError, parse_policy

NOT_CHECKED = (
    "cosignatures not checked: no --policy given (pass your own C2SP tlog-policy file to "
    "require a quorum of witnesses on the checkpoint)"
)


class BundleError(ValueError):
    """The bundle does not prove what it claims; the message says which part."""


@dataclass
class Result:
    checks: list[str]
    failures: list[str]
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def _b64(value, what: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, TypeError, ValueError) as exc:
        raise BundleError(f"{what} is not base64") from exc


def _entry(bundle_entry, name: str, size: int, root: bytes):
    if not isinstance(bundle_entry, dict):
        raise BundleError(f"entries.{name} is missing")
    leaf_bytes = _b64(bundle_entry.get("leaf"), f"entries.{name}.leaf")
    proof = [_b64(h, f"entries.{name}.proof") for h in bundle_entry.get("proof", [])]
    index = bundle_entry.get("index")
    try:
        leaf = parse_leaf(leaf_bytes)
    except EnvelopeError as exc:
        raise BundleError(f"entries.{name}: {exc}") from exc
    if leaf.index != index:
        raise BundleError(f"entries.{name}: the leaf says index {leaf.index}, the bundle {index}")
    try:
        merkle.verify_inclusion(index, size, merkle.leaf_hash(leaf_bytes), proof, root)
    except merkle.ProofError as exc:
        raise BundleError(
            f"entries.{name} (index {index}) is not in the checkpoint: {exc}"
        ) from exc
    return leaf


# A log key and the entry indexes it signs (``last`` is None for the current key).
LogKey = tuple[Verifier, int, int | None]


def _log_keys(items, pinned: Verifier) -> list[LogKey]:
    """The log keys the bundle's ``log_keys`` entries show, the pinned key among them;
    without them (no rotation to show), the pinned key alone."""
    if items is None:
        return [(pinned, 0, None)]
    if not isinstance(items, list) or not items:
        raise BundleError("entries.log_keys must be a list of entries, the genesis first")
    origin, chain = pinned.name, []
    for number, item in enumerate(items):
        leaf_bytes = _b64(item.get("leaf") if isinstance(item, dict) else None, "log_keys.leaf")
        try:
            if number == 0:
                genesis = parse_leaf(leaf_bytes)
                env = genesis.envelope
                ring = Keyring()
                ring.admit(genesis.index, env["kind"], env["payload"], env["author"])
                public_key = ring.keys[ring.log_key].public_key
                if ring.origin != origin or not verify_leaf_signature(genesis, public_key, origin):
                    raise BundleError("entries.log_keys: the genesis is not this log's")
                chain.append((_verifier(origin, public_key), 0, None))
                continue
            vkey = read_log_key_rotation(leaf_bytes, origin, chain[-1][0].public_key)
            index = parse_leaf(leaf_bytes).index
        except (EnvelopeError, KeyringError) as exc:
            raise BundleError(f"entries.log_keys[{number}]: {exc}") from exc
        old, first, _ = chain.pop()
        chain += [(old, first, index), (parse_verifier_key(vkey), index + 1, None)]
    if all(v.public_key != pinned.public_key for v, _, _ in chain):
        raise BundleError("the verifier key is not a log key of this log")
    return chain


def _verifier(origin: str, public_key: bytes) -> Verifier:
    return parse_verifier_key(verifier_key(origin, public_key))


def _key_at(chain: list[LogKey], index: int) -> Verifier:
    """The log key valid at ``index`` (and for the checkpoint of that size)."""
    for v, first, last in chain:
        if first <= index and (last is None or index <= last):
            return v
    raise BundleError(f"no log key is valid at index {index}")


def _checkpoint(bundle: dict, vkey: str):
    """The bundle's checkpoint, under the log key for its size; the log keys."""
    pinned = parse_verifier_key(vkey)
    entries = bundle["entries"]
    chain = _log_keys(entries.get("log_keys"), pinned)
    signer = pinned
    try:
        signer = _key_at(chain, parse_checkpoint(split_note(bundle["note"])[0]).size)
        cp = open_checkpoint(bundle["note"], signer, origin=pinned.name)
    except NoteError as exc:
        raise BundleError(
            f"note: not a checkpoint signed by {signer.name}+{signer.key_id.hex()}, the log "
            f"key for its size: {exc}"
        ) from exc
    for number, item in enumerate(entries.get("log_keys") or []):
        _entry(item, f"log_keys[{number}]", cp.size, cp.root)
    return cp, chain


def verify(directory: Path, bundle: dict, vkey: str, policy: Policy | None = None) -> Result:
    """Check ``directory`` against ``bundle`` under the log's verifier key ``vkey``, and,
    with ``policy`` (the member's own C2SP tlog-policy), the checkpoint's cosignatures."""
    checks: list[str] = []
    notes = [] if policy is not None else [NOT_CHECKED]
    try:
        cp, chain = _checkpoint(bundle, vkey)
        checks.append(f"checkpoint: signed by {cp.origin}, tree size {cp.size}")
        if len(chain) > 1:
            checks.append(f"{len(chain)} log keys, each rotation signed by both keys")
        if policy is not None:
            signer = _key_at(chain, cp.size)
            checks.append(
                _cosigned(
                    bundle["note"], cp.origin, verifier_key(cp.origin, signer.public_key), policy
                )
            )
        key_leaf = _entry(bundle["entries"].get("author_key"), "author_key", cp.size, cp.root)
        if key_leaf.envelope["kind"] != "key.registered":
            raise BundleError("entries.author_key is not a key registration")
        registrar = _key_at(chain, key_leaf.index)
        if not verify_leaf_signature(key_leaf, registrar.public_key, cp.origin):
            raise BundleError("entries.author_key is not signed by the log key")
        if key_leaf.envelope["author"] != key_fingerprint(registrar.public_key):
            raise BundleError("entries.author_key is not authored by the log key")
        desc = key_leaf.envelope["payload"]["key"]
        author_key = _b64(desc["public_key"], "the registered public key")
        checks.append(
            f"key {desc['name']} ({desc['fingerprint'][:16]}…) registered by the log "
            f"at index {key_leaf.index}"
        )
        pub = _entry(bundle["entries"].get("published"), "published", cp.size, cp.root)
        if pub.envelope["kind"] != "checkpoint.published":
            raise BundleError("entries.published is not a checkpoint publication")
        if pub.index <= key_leaf.index:
            raise BundleError("the publication comes before its key was registered")
        if pub.envelope["author"] != desc["fingerprint"]:
            raise BundleError("entries.published is not signed by the registered key")
        if not verify_leaf_signature(pub, author_key, cp.origin):
            raise BundleError("entries.published: the signature does not verify")
        payload = pub.envelope["payload"]
        checks.append(f"checkpoint.published at index {pub.index}, included and signed")
        manifest = bundle["manifest"].encode("utf-8")
        digest = hashlib.sha256(manifest).hexdigest()
        if digest != payload["checkpoint"]:
            raise BundleError(
                f"the manifest's SHA-256 {digest} is not the published digest "
                f"{payload['checkpoint']}"
            )
        listed = _manifest_files(manifest)
        published = {f["path"]: (f["size"], f["sha256"]) for f in payload["files"]}
        if listed != published:
            raise BundleError("the manifest does not list the files the entry publishes")
        checks.append(f"manifest {digest}: {len(listed)} files, as published")
    except BundleError as exc:
        return Result(checks, [str(exc)], notes)
    except (NoteError, KeyError, TypeError, AttributeError) as exc:
        return Result(checks, [f"the bundle is malformed or not signed by this key: {exc}"], notes)
    failures = _check_files(Path(directory), listed)
    if not failures:
        checks.append(f"{len(listed)} files in {directory}: sizes and SHA-256 as published")
    return Result(checks, failures, notes)


def _cosigned(note: str, origin: str, vkey: str, policy: Policy) -> str:
    verdict = policy.check(note, origin, log_vkeys=(vkey,))
    if not verdict.ok:
        raise BundleError(f"note: the checkpoint is below your policy's quorum: {verdict.why}")
    if not verdict.cosigned_by:
        return "checkpoint: your policy asks for no cosignature"
    return (
        f"checkpoint: cosigned by {', '.join(verdict.cosigned_by)}, your policy's quorum "
        f"{policy.quorum} met"
    )


def _manifest_files(text: bytes) -> dict[str, tuple[int, str]]:
    files: dict[str, tuple[int, str]] = {}
    for number, line in enumerate(text.decode("utf-8").splitlines(), start=1):
        parts = line.split("\t")
        if len(parts) != 3 or not (parts[1].isascii() and parts[1].isdigit()):
            raise BundleError(f"manifest line {number} is not <path>\\t<size>\\t<sha256>")
        files[parts[0]] = (int(parts[1]), parts[2])
    return files


def _check_files(root: Path, listed: dict[str, tuple[int, str]]) -> list[str]:
    failures = []
    present = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    for path in sorted(present - set(listed)):
        failures.append(f"{path}: not in the manifest")
    for path, (size, sha256) in sorted(listed.items()):
        target = root / path
        if path not in present:
            failures.append(f"{path}: missing")
            continue
        digest = hashlib.sha256()
        read = 0
        with open(target, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
                read += len(chunk)
        if read != size:
            failures.append(f"{path}: {read} bytes, the manifest says {size}")
        elif digest.hexdigest() != sha256:
            failures.append(f"{path}: SHA-256 {digest.hexdigest()}, the manifest says {sha256}")
    return failures


def main(argv: list[str] | None = None, prog: str = "python -m ledger.provenance") -> int:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Verify downloaded checkpoint files against a provenance bundle, offline.",
    )
    sub = parser.add_subparsers(dest="action", required=True)
    v = sub.add_parser("verify", help="Check a directory of files against a bundle.")
    v.add_argument("directory", type=Path)
    v.add_argument("--bundle", type=Path, required=True, help="The bundle (JSON).")
    v.add_argument(
        "--vkey",
        required=True,
        help="The log's verifier key, name+hex8+base64 (any key the log has had).",
    )
    v.add_argument(
        "--policy",
        type=Path,
        help="Your own C2SP tlog-policy file: the bundle's checkpoint must carry the "
        "cosignatures its quorum asks for. Never take it from the log.",
    )
    args = parser.parse_args(argv)
    try:
        # Bytes, as written: a text read would fold line ends before anything is checked.
        bundle = json.loads(args.bundle.read_bytes())
    except (OSError, ValueError) as exc:
        print(f"FAIL cannot read the bundle: {exc}", file=sys.stderr)
        return 2
    try:
        policy = None if args.policy is None else parse_policy(args.policy.read_bytes())
    except (OSError, PolicyError) as exc:
        print(f"FAIL the policy {args.policy}: {exc}", file=sys.stderr)
        return 2
    result = verify(args.directory, bundle, args.vkey, policy)
    for line in result.checks:
        print(f"ok   {line}")
    for line in result.failures:
        print(f"FAIL {line}")
    for line in result.notes:
        print(f"NOTE {line}")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
