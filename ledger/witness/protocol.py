"""The ``add-checkpoint`` rules of C2SP tlog-witness v1.0.0, without HTTP.

Each answer is a :class:`Reply` whose status is the one the specification names. Three
cases the v1.0.0 text leaves open follow the specification's later clarifications (see
docs/witness.md): a checkpoint of size 0 must carry the empty tree's root, a proof from
old size 0 must be empty, and the same size with another root is answered 422 (not 409,
whose body would tell the log to retry the very size it sent) and kept as a fork.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass, field

from ledger.core.merkle import EMPTY_ROOT, ProofError, verify_consistency
from ledger.core.note import (
    SIG_PREFIX,
    NoteError,
    Verifier,
    b64,
    b64decode_strict,
    open_note,
    parse_checkpoint,
    split_note,
)
from ledger.witness.mirror_state import Fault
from ledger.witness.state import Conflict, Latest, State, Store

MAX_BODY = 16 * 1024
MAX_PROOF_LINES = 63
_SIZE_RE = re.compile(r"old (0|[1-9][0-9]{0,18})")

TEXT = "text/plain; charset=utf-8"
SIZE_TYPE = "text/x.tlog.size"


@dataclass(frozen=True)
class Reply:
    status: int
    body: str
    content_type: str = TEXT
    headers: dict = field(default_factory=dict)


class BadRequest(ValueError):
    """The body is not an old size line, proof lines, a blank line and a checkpoint."""


@dataclass(frozen=True)
class Request:
    old: int
    proof: list[bytes]
    proof_text: str
    note: str


def parse_body(body: bytes) -> Request:
    """Split an add-checkpoint body into its old size, its proof and its signed note."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest("the body is not UTF-8") from exc
    head, sep, note = text.partition("\n\n")
    if not sep:
        raise BadRequest("the body has no blank line before the checkpoint")
    lines = head.split("\n")
    match = _SIZE_RE.fullmatch(lines[0])
    if not match:
        raise BadRequest("the first line is 'old <size>', a decimal without leading zeros")
    if len(lines) - 1 > MAX_PROOF_LINES:
        raise BadRequest(f"a consistency proof has at most {MAX_PROOF_LINES} lines")
    proof = []
    for i, line in enumerate(lines[1:]):
        try:
            h = b64decode_strict(line, f"proof line {i + 1}")
        except NoteError as exc:
            raise BadRequest(str(exc)) from exc
        if len(h) != 32:
            raise BadRequest(f"proof line {i + 1} is not a 32-byte hash")
        proof.append(h)
    return Request(int(match.group(1)), proof, "\n".join(lines[1:]), note)


def origin_hash(origin: str) -> str:
    """The monitoring path's name for a log: SHA-256 of its origin, lowercase hex."""
    return hashlib.sha256(origin.encode()).hexdigest()


class Witness:
    """The witness's keys, its state and the logs it trusts (origin -> verifier keys).

    Each key adds its cosignature line (an Ed25519 cosignature/v1 or ML-DSA-44 cosigner:
    anything with ``cosign(body, timestamp)``).
    """

    def __init__(self, cosigners: list, state: State, logs: dict[str, list[Verifier]]):
        self.cosigners = cosigners
        self.state = state
        self.logs = logs
        self.by_hash = {origin_hash(o): o for o in logs}
        for origin in logs:
            state.add_log(origin)

    def add_checkpoint(self, body: bytes) -> Reply:
        try:
            req = parse_body(body)
            text, _ = split_note(req.note)
            cp = parse_checkpoint(text)
        except (BadRequest, NoteError) as exc:
            return Reply(400, f"malformed request: {exc}\n")
        verifiers = self.logs.get(cp.origin)
        if verifiers is None:
            return Reply(404, f"unknown log origin {cp.origin!r}\n")
        try:
            opened = open_note(req.note, verifiers)
        except NoteError as exc:
            return Reply(403, f"no valid signature by a trusted key of the log: {exc}\n")
        if req.old > cp.size:
            return Reply(400, f"old size {req.old} is larger than the checkpoint's {cp.size}\n")
        if cp.size == 0 and cp.root != EMPTY_ROOT:
            return Reply(422, "a checkpoint of size 0 has the empty tree's root\n")
        if req.old == 0 and req.proof:
            return Reply(422, "a consistency proof from size 0 is empty\n")
        # Only the log's verified signatures are kept beside the witness's own.
        kept = "".join(
            f"{SIG_PREFIX}{s.name} {b64(s.key_id + s.signature)}\n" for s in opened.verified
        )

        def decide(latest: Latest):
            fault = self.state.mirror_fault(cp.origin)  # in the same transaction
            if fault is not None:
                return Reply(422, _refusal(fault))
            if req.old != latest.size:
                return Reply(409, f"{latest.size}\n", SIZE_TYPE)
            refused = _inconsistency(req, cp.size, cp.root, latest)
            if refused:
                kind, reason = refused
                return Conflict(kind, req.old, req.note, req.proof_text, reason)
            now = int(time.time())
            lines = "".join(c.cosign(text, now) for c in self.cosigners)
            return Store(cp.size, cp.root, text + "\n" + kept + lines, lines)

        try:
            outcome = self.state.advance(cp.origin, decide)
        except KeyError:
            return Reply(404, f"unknown log origin {cp.origin!r}\n")
        if isinstance(outcome, Reply):
            return outcome
        if isinstance(outcome, Conflict):
            return Reply(422, outcome.reason + "\n")
        return Reply(200, outcome.cosignatures)

    def checkpoint(self, hexhash: str) -> Reply:
        """The latest checkpoint cosigned for a log, with the log's and our signatures."""
        origin = self.by_hash.get(hexhash)
        latest = self.state.latest(origin) if origin else None
        if latest is None or latest.checkpoint is None:
            return Reply(404, "this witness has cosigned no checkpoint of that log\n")
        return Reply(200, latest.checkpoint)


def _inconsistency(req: Request, size: int, root: bytes, latest: Latest) -> tuple[str, ...]:
    """Why (kind, reason) the offered checkpoint does not extend the latest cosigned one.

    Empty when it does. "fork": the same size with another root, proof in itself that
    the log signed two histories; "inconsistent": a proof that fails.
    """
    if req.old == 0:
        return ()
    if req.old == size:
        if req.proof:
            return ("inconsistent", "a consistency proof between equal sizes is empty")
        if root != latest.root:
            return ("fork", f"size {size} was cosigned with another root hash: a fork of the log")
        return ()
    try:
        verify_consistency(req.old, size, latest.root, root, req.proof)
    except ProofError as exc:
        return ("inconsistent", f"the consistency proof from size {req.old} to {size} fails: {exc}")
    return ()


def _refusal(fault: Fault) -> str:
    return (
        f"this witness's copy of the log holds evidence against it (mirror fault "
        f"#{fault.id}, {fault.kind} at {fault.position}: {fault.reason}); it cosigns no "
        f"more checkpoints of this log\n"
    )
