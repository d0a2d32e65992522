"""C2SP tlog-policy: which logs and witnesses a verifier trusts, and the quorum of
cosignatures a checkpoint must carry.

Pure Python with PyNaCl (and ``cryptography`` only to check ML-DSA-44 cosignatures, where
it provides them), no Django: the offline verifiers read a member's own policy file with it.

Implements the text of https://github.com/C2SP/C2SP/blob/1896a5aea5559b3203d275d0206d872f59348cf5/tlog-policy.md
(C2SP main, 2026-06-22; the spec has no version tag yet). A policy is lines of fields
separated by spaces and tabs::

    log <vkey> [<url>]
    witness <name> <vkey> [<url>]
    group <name> all|any|<k> <name>...
    quorum <name>|none

with blank lines and ``#`` comments ignored. Groups and the quorum name only witnesses
and groups defined on earlier lines; witnesses and groups share one namespace, in which
``none`` is reserved; a group lists each member once and needs 1 <= k <= n; there is
exactly one quorum line; no two logs, and no two witnesses, wrap the same public key.
The only control characters are tab and newline. A last line without its newline is read
as if it had one.

Keys: a log's is an Ed25519 note key (type 0x01, C2SP tlog-checkpoint), and its name is
the log's origin line; a witness's is an Ed25519 ``cosignature/v1`` key (type 0x04, C2SP
tlog-cosignature v1.0.0) or an ML-DSA-44 key (type 0x06, tlog-cosignature v1.1.0-rc.1).

:meth:`Policy.check` says whether a signed checkpoint (the log's note with the witnesses'
cosignature lines appended) is valid under the policy: signed by a listed log for the
origin, and cosigned, on that very checkpoint, by witnesses that satisfy the quorum.
Cosignature timestamps are read only to verify the signature (tlog-proof: "the timestamp
value is ignored").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

from ledger.core.note import (
    Checkpoint,
    NoteError,
    NoteSignature,
    Verifier,
    parse_checkpoint,
    parse_verifier_key,
    split_note,
    split_verifier_key,
)
from ledger.witness import mldsa
from ledger.witness.cosignature import ALG_COSIGNATURE_V1, parse_cosignature_vkey

SPEC = "C2SP tlog-policy (main at 1896a5a, 2026-06-22)"
NONE = "none"
_FIELD_SEP = re.compile(r"[ \t]+")
_DECIMAL = re.compile(r"[0-9]{1,9}")


class PolicyError(ValueError):
    """A policy text that does not follow C2SP tlog-policy; the message names the line."""


class PolicyLog(NamedTuple):
    """A ``log`` line: its verifier key and its URL (``None`` when absent)."""

    vkey: str
    url: str | None

    @property
    def origin(self) -> str:
        """The key's name, which tlog-policy makes the log's origin line."""
        return self.vkey.split("+", 1)[0]


class PolicyWitness(NamedTuple):
    """A ``witness`` line: its verifier key and its URL (``None`` when absent)."""

    vkey: str
    url: str | None


class PolicyGroup(NamedTuple):
    """A ``group`` line: at least ``threshold`` of ``members`` must have witnessed."""

    threshold: int
    members: tuple[str, ...]


@dataclass(frozen=True)
class PolicyResult:
    """What :meth:`Policy.check` found.

    ``ok``: signed by a policy log for the origin and the quorum met. ``cosigned_by``: the
    policy's names of the witnesses whose cosignature on this very checkpoint verifies,
    in the policy's order. ``why``: empty when ok, else what is missing or wrong.
    ``checkpoint``: the checkpoint read from the note, once its log signature verified.
    """

    ok: bool
    cosigned_by: list[str]
    why: str
    checkpoint: Checkpoint | None = None


def _fail(why: str) -> PolicyResult:
    return PolicyResult(False, [], why)


class Policy:
    """A parsed policy (use :func:`parse_policy`)."""

    def __init__(
        self,
        logs: list[PolicyLog],
        witnesses: dict[str, PolicyWitness],
        groups: dict[str, PolicyGroup],
        quorum: str,
        verifiers: dict[str, object],
    ):
        self.logs = logs
        self.witnesses = witnesses
        self.groups = groups
        self.quorum = quorum
        self._verifiers = verifiers  # witness name -> CosignatureVerifier | MLDSAVerifier

    def log_verifiers(self, origin: str) -> list[Verifier]:
        """The Ed25519 verifiers of the policy's logs whose key name is ``origin``."""
        return [parse_verifier_key(log.vkey) for log in self.logs if log.origin == origin]

    def check(
        self, note_text: str | bytes, origin: str, *, log_vkeys: tuple[str, ...] = ()
    ) -> PolicyResult:
        """Is ``note_text`` (a signed checkpoint with any cosignature lines) valid here?

        ``origin`` is the log the caller expects. ``log_vkeys``: log keys the caller knows
        from elsewhere (tlog-policy lets a policy leave its logs to the context), used
        beside the policy's ``log`` lines; their names too must be the origin.
        """
        try:
            body, sigs = split_note(note_text)
            checkpoint = parse_checkpoint(body)
        except NoteError as exc:
            return _fail(f"the checkpoint is malformed: {exc}")
        if checkpoint.origin != origin:
            return _fail(f"the checkpoint's origin is {checkpoint.origin!r}, not {origin!r}")
        why = self._check_log_signature(body, sigs, origin, log_vkeys)
        if why:
            return _fail(why)
        cosigned, notes = self._cosigners(body, sigs)
        met, reasons = self._evaluate(cosigned)
        names = [name for name in self.witnesses if name in cosigned]
        if met:
            return PolicyResult(True, names, "", checkpoint)
        why = f"quorum {self.quorum} not met: " + "; ".join(reasons + notes)
        return PolicyResult(False, names, why, checkpoint)

    def _check_log_signature(self, body, sigs, origin, log_vkeys) -> str:
        verifiers = self.log_verifiers(origin)
        for vkey in log_vkeys:
            try:
                extra = parse_verifier_key(vkey)
            except NoteError as exc:
                return f"the log key given beside the policy: {exc}"
            if extra.name == origin:
                verifiers.append(extra)
        if not verifiers:
            return f"the policy names no log key for origin {origin!r}"
        by_id = {(v.name, v.key_id): v for v in verifiers}
        good = False
        for sig in sigs:
            verifier = by_id.get((sig.name, sig.key_id))
            if verifier is None:
                continue
            if len(sig.signature) != 64 or not verifier.verify(body.encode(), sig.signature):
                return f"invalid log signature by {sig.name}"
            good = True
        if not good:
            return f"no signature by the policy's log key for {origin!r}"
        return ""

    def _cosigners(self, body: str, sigs: list[NoteSignature]) -> tuple[set[str], list[str]]:
        """The witnesses with a valid cosignature on ``body``, and notes on the lines by a
        policy witness's key that do not verify (another checkpoint's, or forged)."""
        cosigned: set[str] = set()
        notes: list[str] = []
        for name, verifier in self._verifiers.items():
            mine = [s for s in sigs if s.name == verifier.name and s.key_id == verifier.key_id]
            if not mine:
                continue
            if isinstance(verifier, mldsa.MLDSAVerifier) and not mldsa.AVAILABLE:
                notes.append(f"witness {name}'s ML-DSA-44 cosignature not checked here")
                continue
            for sig in mine:
                try:
                    verifier.verify(body, sig.signature)
                except NoteError:
                    continue
                cosigned.add(name)
                break
            else:
                notes.append(f"witness {name}'s cosignature does not verify on this checkpoint")
        return cosigned, notes

    def _evaluate(self, cosigned: set[str]) -> tuple[bool, list[str]]:
        """Whether the quorum has witnessed, and, if not, why (group by group)."""
        if self.quorum == NONE:
            return True, []
        met: dict[str, bool] = {name: name in cosigned for name in self.witnesses}
        reasons: dict[str, list[str]] = {}
        for name, group in self.groups.items():  # each refers only to earlier names
            have = [m for m in group.members if met[m]]
            met[name] = len(have) >= group.threshold
            if not met[name]:
                missing = [m for m in group.members if not met[m]]
                text = (
                    f"group {name}: {len(have)} of {group.threshold} needed "
                    f"(missing: {', '.join(missing)})"
                )
                nested = [r for m in missing if m in self.groups for r in reasons[m]]
                reasons[name] = [text, *nested]
        if met[self.quorum]:
            return True, []
        if self.quorum in self.groups:
            return False, reasons[self.quorum]
        return False, [f"witness {self.quorum} did not cosign"]


def _witness_verifier(vkey: str):
    _, _, raw = split_verifier_key(vkey)
    if raw[:1] == bytes([ALG_COSIGNATURE_V1]):
        return parse_cosignature_vkey(vkey)
    if raw[:1] == bytes([mldsa.ALG_MLDSA44]):
        return mldsa.parse_mldsa_vkey(vkey)
    raise NoteError(
        "a witness key is a cosignature/v1 key (type 0x04) or an ML-DSA-44 key (type 0x06)"
    )


class _Reader:
    """The state of one pass over the lines."""

    def __init__(self):
        self.logs: list[PolicyLog] = []
        self.log_keys: set[bytes] = set()
        self.witnesses: dict[str, PolicyWitness] = {}
        self.witness_keys: dict[bytes, str] = {}
        self.verifiers: dict[str, object] = {}
        self.groups: dict[str, PolicyGroup] = {}
        self.quorum: str | None = None

    def defined(self, name: str) -> bool:
        return name in self.witnesses or name in self.groups

    def new_name(self, name: str) -> None:
        if name == NONE:
            raise PolicyError(f"the name {NONE!r} is reserved for 'quorum none'")
        if self.defined(name):
            raise PolicyError(f"{name!r} is already defined (witnesses and groups share names)")

    def log(self, fields: list[str]) -> None:
        if len(fields) not in (2, 3):
            raise PolicyError("a log line is 'log <vkey> [<url>]'")
        try:
            verifier = parse_verifier_key(fields[1])
        except NoteError as exc:
            raise PolicyError(f"the log's key: {exc}") from exc
        if verifier.public_key in self.log_keys:
            raise PolicyError("a second log line with the same public key")
        self.log_keys.add(verifier.public_key)
        self.logs.append(PolicyLog(fields[1], fields[2] if len(fields) == 3 else None))

    def witness(self, fields: list[str]) -> None:
        if len(fields) not in (3, 4):
            raise PolicyError("a witness line is 'witness <name> <vkey> [<url>]'")
        name, vkey = fields[1], fields[2]
        self.new_name(name)
        try:
            verifier = _witness_verifier(vkey)
        except NoteError as exc:
            raise PolicyError(f"witness {name}'s key: {exc}") from exc
        if verifier.public_key in self.witness_keys:
            other = self.witness_keys[verifier.public_key]
            raise PolicyError(f"witness {name} has the same public key as witness {other}")
        self.witness_keys[verifier.public_key] = name
        self.witnesses[name] = PolicyWitness(vkey, fields[3] if len(fields) == 4 else None)
        self.verifiers[name] = verifier

    def group(self, fields: list[str]) -> None:
        if len(fields) < 4:
            raise PolicyError("a group line is 'group <name> all|any|<k> <name>...'")
        name, k, members = fields[1], fields[2], fields[3:]
        self.new_name(name)
        for member in members:
            if member == NONE:
                raise PolicyError(f"{NONE!r} cannot be a group member")
            if not self.defined(member):
                raise PolicyError(f"group {name}: {member!r} is not defined on an earlier line")
        if len(set(members)) != len(members):
            twice = next(m for m in members if members.count(m) > 1)
            raise PolicyError(f"group {name} lists {twice!r} twice")
        if k == "all":
            threshold = len(members)
        elif k == "any":
            threshold = 1
        elif _DECIMAL.fullmatch(k):
            threshold = int(k)
            if not 1 <= threshold <= len(members):
                raise PolicyError(
                    f"group {name}: a threshold is from 1 to the {len(members)} members, "
                    f"not {threshold}"
                )
        else:
            raise PolicyError(f"group {name}: the threshold is 'all', 'any' or a decimal k")
        self.groups[name] = PolicyGroup(threshold, tuple(members))

    def quorum_line(self, fields: list[str]) -> None:
        if len(fields) != 2:
            raise PolicyError("a quorum line is 'quorum <name>'")
        if self.quorum is not None:
            raise PolicyError("a second quorum line (a policy has exactly one)")
        if fields[1] != NONE and not self.defined(fields[1]):
            raise PolicyError(f"quorum {fields[1]!r} is not defined on an earlier line")
        self.quorum = fields[1]


def _check_characters(text: str) -> None:
    for at, char in enumerate(text):
        code = ord(char)
        if (code < 0x20 and char not in "\t\n") or code == 0x7F:
            line = text.count("\n", 0, at) + 1
            raise PolicyError(
                f"line {line}: character {code:#04x} is not allowed (the only control "
                "characters are tab and newline)"
            )


def parse_policy(text: str | bytes) -> Policy:
    """Read a tlog-policy text (bytes are read as UTF-8, other high octets kept opaque)."""
    if isinstance(text, bytes | bytearray):
        text = bytes(text).decode("utf-8", "surrogateescape")
    if not isinstance(text, str):
        raise PolicyError("a policy is text")
    _check_characters(text)
    reader = _Reader()
    handlers = {
        "log": reader.log,
        "witness": reader.witness,
        "group": reader.group,
        "quorum": reader.quorum_line,
    }
    for number, line in enumerate(text.split("\n"), start=1):
        stripped = line.strip(" \t")
        if not stripped or stripped.startswith("#"):
            continue
        fields = _FIELD_SEP.split(stripped)
        handler = handlers.get(fields[0])
        try:
            if handler is None:
                raise PolicyError(
                    f"{fields[0]!r} is not a policy keyword (log, witness, group, quorum)"
                )
            handler(fields)
        except PolicyError as exc:
            raise PolicyError(f"line {number}: {exc}") from None
    if reader.quorum is None:
        raise PolicyError("the policy has no quorum line (use 'quorum none' for none)")
    return Policy(reader.logs, reader.witnesses, reader.groups, reader.quorum, reader.verifiers)


__all__ = [
    "SPEC",
    "Policy",
    "PolicyError",
    "PolicyGroup",
    "PolicyLog",
    "PolicyResult",
    "PolicyWitness",
    "parse_policy",
]
