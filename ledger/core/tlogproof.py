"""C2SP tlog-proof: an entry's inclusion proof and the (cosigned) checkpoint it leads to,
as one text file that is verified offline.

Pure Python with PyNaCl, no Django. Implements the ``c2sp.org/tlog-proof@v1`` format of
https://github.com/C2SP/C2SP/blob/ab17a74116563005f908b9167e6421cc929a5c2b/tlog-proof.md
(C2SP main, 2026-05-22; the spec has no version tag yet)::

    c2sp.org/tlog-proof@v1
    [extra <base64>]
    index <decimal, no leading zero>
    <inclusion proof: one base64 SHA-256 hash a line, from the leaf's sibling up>

    <the checkpoint, verbatim: body, blank line, signature and cosignature lines>

Verification follows the spec's steps: the leaf hash (RFC 9162: SHA-256 of 0x00 and the
leaf bytes, which the verifier has from elsewhere), the checkpoint's origin and its log
signature, the witnesses' cosignatures against a C2SP tlog-policy
(:mod:`ledger.core.policy`), and the inclusion proof to the signed root. The ``extra``
data is not authenticated and is never relied on.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from ledger.core import merkle
from ledger.core.note import NoteError, b64, b64decode_strict, note_text
from ledger.core.policy import Policy

HEADER = "c2sp.org/tlog-proof@v1"
SPEC = "C2SP tlog-proof c2sp.org/tlog-proof@v1 (main at ab17a74, 2026-05-22)"
MEDIA_TYPE = "text/plain; charset=utf-8"  # the spec names a file extension, no media type
EXTENSION = ".tlog-proof"
# A proof in a tree of at most 2^63 - 1 leaves has at most 63 hashes.
MAX_PROOF = 63
_INDEX = re.compile(r"0|[1-9][0-9]{0,18}")


class TlogProofError(ValueError):
    """A tlog-proof file that does not follow the format; the message says where."""


@dataclass(frozen=True)
class TlogProof:
    index: int
    proof: tuple[bytes, ...]
    checkpoint: str  # the note, verbatim
    extra: bytes | None = None

    def text(self) -> str:
        return format_proof(self.index, self.proof, self.checkpoint, extra=self.extra)


def format_proof(
    index: int, proof: Sequence[bytes], checkpoint: str, *, extra: bytes | None = None
) -> str:
    """The tlog-proof file of the entry at ``index``: its inclusion ``proof`` in the tree
    the signed ``checkpoint`` (with any cosignature lines) commits to."""
    if not 0 <= index <= 2**63 - 1:
        raise TlogProofError("an index is between 0 and 2^63 - 1")
    if any(len(h) != 32 for h in proof):
        raise TlogProofError("an inclusion proof holds 32-byte hashes")
    lines = [HEADER]
    if extra is not None:
        lines.append(f"extra {b64(extra)}")
    lines.append(f"index {index}")
    lines.extend(b64(h) for h in proof)
    return "\n".join(lines) + "\n\n" + checkpoint


def parse_proof(data: str | bytes) -> TlogProof:
    """Read a tlog-proof file (its bytes, or text): refuses CR line ends, non-UTF-8, and
    anything the format does not allow, naming the line."""
    try:
        text = note_text(data)
    except NoteError as exc:
        raise TlogProofError(str(exc)) from exc
    head, sep, checkpoint = text.partition("\n\n")
    if not sep:
        raise TlogProofError("no empty line between the proof and the checkpoint")
    lines = head.split("\n")
    if lines[0] != HEADER:
        raise TlogProofError(f"line 1 is not {HEADER}")
    at = 1
    extra = None
    if at < len(lines) and lines[at].startswith("extra "):
        try:
            extra = b64decode_strict(lines[at][len("extra ") :], "the extra data")
        except NoteError as exc:
            raise TlogProofError(f"line {at + 1}: {exc}") from exc
        at += 1
    if at >= len(lines) or not lines[at].startswith("index "):
        raise TlogProofError(f"line {at + 1} is not 'index <n>'")
    index_text = lines[at][len("index ") :]
    if not _INDEX.fullmatch(index_text) or int(index_text) > 2**63 - 1:
        raise TlogProofError(f"line {at + 1}: the index is a decimal without leading zeros")
    proof = []
    for number, line in enumerate(lines[at + 1 :], start=at + 2):
        try:
            h = b64decode_strict(line, "a proof hash")
        except NoteError as exc:
            raise TlogProofError(f"line {number}: {exc}") from exc
        if len(h) != 32:
            raise TlogProofError(f"line {number}: a proof hash is 32 bytes")
        proof.append(h)
    if len(proof) > MAX_PROOF:
        raise TlogProofError(f"{len(proof)} proof hashes; a proof has at most {MAX_PROOF}")
    if not checkpoint:
        raise TlogProofError("the checkpoint is missing after the empty line")
    return TlogProof(int(index_text), tuple(proof), checkpoint, extra)


@dataclass(frozen=True)
class ProofResult:
    """``ok`` when every step held; ``why`` names the first that did not; ``checks`` says
    what held, in order."""

    ok: bool
    why: str
    index: int | None = None
    size: int | None = None
    cosigned_by: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)


def verify_proof(
    data: str | bytes,
    leaf: bytes,
    policy: Policy,
    *,
    origin: str | None = None,
    log_vkeys: tuple[str, ...] = (),
) -> ProofResult:
    """Check a tlog-proof file for ``leaf`` (the entry's bytes) against ``policy``.

    ``origin``: the log the caller expects (default: the checkpoint's own origin line,
    which the policy must then list a log key for). ``log_vkeys``: log keys known from
    elsewhere (see :meth:`Policy.check`).
    """
    try:
        proof = parse_proof(data)
    except TlogProofError as exc:
        return ProofResult(False, f"not a tlog-proof: {exc}")
    checks = [f"{HEADER} file for index {proof.index:,}"]
    leaf_hash = merkle.leaf_hash(leaf)  # 1. the leaf hash
    if origin is None:
        origin = proof.checkpoint.split("\n", 1)[0]
    verdict = policy.check(proof.checkpoint, origin, log_vkeys=log_vkeys)  # 2. and 3.
    cp = verdict.checkpoint
    if cp is None:
        return ProofResult(False, verdict.why, proof.index, checks=checks)
    checks.append(f"checkpoint of {cp.origin!r} at size {cp.size:,}, signed by the log key")
    if not verdict.ok:
        return ProofResult(
            False,
            f"the checkpoint is below the policy's quorum: {verdict.why}",
            proof.index,
            cp.size,
            verdict.cosigned_by,
            checks,
        )
    if verdict.cosigned_by:
        checks.append(f"cosigned by {', '.join(verdict.cosigned_by)}: the policy's quorum met")
    else:
        checks.append("the policy's quorum is 'none': no cosignature required")
    try:  # 4. the inclusion proof
        merkle.verify_inclusion(proof.index, cp.size, leaf_hash, proof.proof, cp.root)
    except merkle.ProofError as exc:
        return ProofResult(
            False,
            f"the leaf is not at index {proof.index:,} of the checkpoint's tree: {exc}",
            proof.index,
            cp.size,
            verdict.cosigned_by,
            checks,
        )
    checks.append(f"leaf {leaf_hash.hex()} included at index {proof.index:,}")
    return ProofResult(True, "", proof.index, cp.size, verdict.cosigned_by, checks)
