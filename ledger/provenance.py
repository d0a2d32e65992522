"""Verify a directory of downloaded checkpoint files against a provenance bundle, offline.

Needs Python and PyNaCl only: no Django, no database, no network::

    python -m ledger.provenance verify <directory> --bundle bundle.json --vkey '<verifier key>' \
        [--policy <your C2SP tlog-policy file>]

What it checks, in order, and names what fails:

1. the bundle's checkpoint is a C2SP signed note by the log key named by the verifier key;
   with ``--policy``, it carries the cosignatures the policy's quorum asks for (without
   it, cosignatures are not checked, and the output says so);
2. the registration of the publishing key (a ``key.registered`` entry signed by the log
   key) and the ``checkpoint.published`` entry (signed by the key registered there) are
   both in the tree that checkpoint commits to (RFC 9162 inclusion proofs), with valid
   signatures;
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
from ledger.core.note import NoteError, open_checkpoint, parse_verifier_key
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


def verify(directory: Path, bundle: dict, vkey: str, policy: Policy | None = None) -> Result:
    """Check ``directory`` against ``bundle`` under the log's verifier key ``vkey``, and,
    with ``policy`` (the member's own C2SP tlog-policy), the checkpoint's cosignatures."""
    checks: list[str] = []
    notes = [] if policy is not None else [NOT_CHECKED]
    try:
        verifier = parse_verifier_key(vkey)
        try:
            cp = open_checkpoint(bundle["note"], verifier)
        except NoteError as exc:
            raise BundleError(f"note: not a checkpoint signed by {verifier.name}: {exc}") from exc
        checks.append(f"checkpoint: signed by {verifier.name}, tree size {cp.size}")
        if policy is not None:
            checks.append(_cosigned(bundle["note"], cp.origin, vkey, policy))
        key_leaf = _entry(bundle["entries"].get("author_key"), "author_key", cp.size, cp.root)
        if key_leaf.envelope["kind"] != "key.registered":
            raise BundleError("entries.author_key is not a key registration")
        if not verify_leaf_signature(key_leaf, verifier.public_key):
            raise BundleError("entries.author_key is not signed by the log key")
        if key_leaf.envelope["author"] != key_fingerprint(verifier.public_key):
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
        if not verify_leaf_signature(pub, author_key):
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
    v.add_argument("--vkey", required=True, help="The log's verifier key, name+hex8+base64.")
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
