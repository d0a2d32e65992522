"""``--mirror``: keep a verified copy of a witnessed log, read from its C2SP tlog-tiles.

For one log, a sync:

1. reads ``<base>/checkpoint`` and verifies it under the log's keys (the ``--log`` ones),
   for its origin;
2. reads the entry bundles (``<base>/tile/entries/<N>[.p/<W>]``) from the size its copy
   already holds up to that checkpoint's, and checks every leaf as the offline verifier
   does (``ledger.core.leafcheck``: the leaf layout, its index, a signature by the key
   valid at that index; key entries replayed on a ``ledger.core.keyring.Keyring`` by
   ``ledger.audit.keys.admit``);
3. rebuilds the tree and compares its root with the checkpoint's, and with the root of
   the latest checkpoint this witness cosigned for the log, when the copy reaches it;
4. makes the new entries part of the verified copy, in one transaction, only then (they
   are written a bundle at a time as they pass, and dropped if anything fails).

A leaf that fails, or a root that differs, is evidence against the log: it is kept in
the state's ``mirror_faults`` (with the leaf or the checkpoint) and said on stderr, and
the witness cosigns no more checkpoints of that log. A log that cannot be reached or
serves something unreadable (an HTTP error, a bundle of the wrong length) is not
evidence: the sync stops, keeps what it verified, and the next one tries again.

Standard library and PyNaCl only (``http.client`` for the tiles).
"""

from __future__ import annotations

import base64
import http.client
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from hashlib import sha256
from urllib.parse import urlsplit

from ledger.audit.keys import KeyEntry, admit
from ledger.audit.result import Result
from ledger.core import merkle
from ledger.core.envelope import EnvelopeError, entry_context, parse_leaf
from ledger.core.keyring import (
    CORE_KEY_KINDS,
    LOG_ROTATION,
    Keyring,
    KeyringError,
    read_log_key_rotation,
)
from ledger.core.leafcheck import HEAD, check_leaf
from ledger.core.note import (
    Checkpoint,
    NoteError,
    Verifier,
    open_note,
    parse_checkpoint,
    parse_verifier_key,
    split_note,
)
from ledger.core.tiles import ENTRIES, WIDTH, TileError, read_entry_bundle, tile_path
from ledger.witness.mirror_state import Fault, Held
from ledger.witness.state import State

USER_AGENT = "ledger-witness-mirror"
MAX_RESPONSE = 64 << 20  # bytes: a bundle is at most 256 entries of 64 KiB


class MirrorError(Exception):
    """The log could not be read (network, HTTP status, an unreadable answer): not
    evidence, the next sync tries again."""


class Tiles:
    """A tlog-tiles prefix over HTTP(S): one keep-alive connection, a bearer token."""

    def __init__(self, base_url: str, token: str | None = None, timeout: float = 30.0):
        parts = urlsplit(base_url.rstrip("/") + "/")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{base_url!r} is not an http:// or https:// URL")
        self.scheme, self.netloc, self.prefix = parts.scheme, parts.netloc, parts.path
        self.headers = {"User-Agent": USER_AGENT}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = (
                http.client.HTTPSConnection
                if self.scheme == "https"
                else http.client.HTTPConnection
            )
            self._conn = cls(self.netloc, timeout=self.timeout)
        return self._conn

    def get(self, path: str) -> bytes:
        """The body of ``<base>/<path>``; a non-200 answer is a ``MirrorError``."""
        for attempt in (1, 2):  # a keep-alive connection the server closed: once more
            conn = self._connection()
            try:
                conn.request("GET", self.prefix + path, headers=self.headers)
                response = conn.getresponse()
                body = response.read(MAX_RESPONSE + 1)
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                if attempt == 2:
                    raise MirrorError(f"GET {path}: {type(exc).__name__}: {exc}") from exc
                continue
            if response.will_close:
                self.close()
            if response.status != 200:
                raise MirrorError(f"GET {path}: HTTP {response.status}: {body[:200]!r}")
            if len(body) > MAX_RESPONSE:
                raise MirrorError(f"GET {path}: the answer is over {MAX_RESPONSE} bytes")
            return body
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


@dataclass
class Synced:
    """What one sync did."""

    origin: str
    before: int
    after: int
    target: int
    fault: Fault | None = None
    new_fault: bool = False
    seconds: float = 0.0

    @property
    def fetched(self) -> int:
        return self.after - self.before


@dataclass
class _Run:
    """One sync's working state: the tree and keyring as the copy's entries leave them."""

    checkpoint: Checkpoint
    note: str
    builder: merkle.TreeBuilder
    keyring: Keyring
    cosigned: tuple[int, bytes] | None
    checked_cosigned: int
    keys: dict = field(default_factory=dict)


class Mirror:
    """The copy of one log: ``sync()`` brings it up to the log's latest checkpoint."""

    def __init__(
        self,
        state: State,
        origin: str,
        verifiers: list[Verifier],
        tiles: Tiles,
        say: Callable[[str], None] | None = None,
    ):
        self.state, self.origin, self.tiles = state, origin, tiles
        # The log's keys; shared with the witness (the same list), so that a key the log
        # rotates to (``trust``) is trusted for its checkpoints by both.
        self.verifiers = verifiers
        self.say = say or (lambda line: print(line, file=sys.stderr, flush=True))

    def trust(self, verifier: Verifier) -> None:
        """Trust another key of the log for its checkpoints (after a log key rotation)."""
        if verifier not in self.verifiers:
            self.verifiers.append(verifier)

    # --- one sync --------------------------------------------------------------------------

    def sync(self) -> Synced:
        started = time.monotonic()
        note = self.tiles.get("checkpoint").decode("utf-8", "replace")
        checkpoint, unverified = self._read_checkpoint(note)
        if checkpoint.origin != self.origin:
            raise MirrorError(f"the checkpoint is for {checkpoint.origin!r}, not {self.origin!r}")
        held = self.state.held(self.origin)
        done = Synced(self.origin, held.size, held.size, checkpoint.size)
        if checkpoint.size <= held.size:
            done.fault, done.new_fault = self._behind(checkpoint, note, held)
        else:
            self.state.drop_unverified(self.origin)
            run = self._start(checkpoint, note, held)
            done.fault, done.new_fault = self._fetch(run, held)
            if done.fault is None and unverified is not None:
                self._verify_after_rotation(note, unverified)
            if done.fault is None:
                done.fault, done.new_fault = self._finish(run, held)
                if done.fault is None:
                    done.after = checkpoint.size
        if done.fault is None:
            done.fault, done.new_fault = self._check_cosigned_held()
        done.seconds = time.monotonic() - started
        if done.fault is not None:
            self._alarm(done.fault, done.new_fault)
        return done

    def _read_checkpoint(self, note: str) -> tuple[Checkpoint, NoteError | None]:
        """The log's checkpoint, and why it does not verify under the keys trusted so far.

        A checkpoint signed by a key this mirror does not know yet may follow a rotation of
        the log key: its entries are then read (each checked under the key history the
        copy's own entries define, from the genesis on), and the checkpoint must verify
        under a key that a ``log.key_rotated`` entry among them introduced
        (:meth:`_verify_after_rotation`). Nothing is kept otherwise.
        """
        try:
            return parse_checkpoint(open_note(note, self.verifiers).text), None
        except NoteError as exc:
            failure = exc
        try:
            checkpoint = parse_checkpoint(split_note(note)[0])
        except NoteError:
            raise MirrorError(f"the log's checkpoint does not verify: {failure}") from failure
        if checkpoint.origin != self.origin or checkpoint.size <= self.state.held(self.origin).size:
            raise MirrorError(f"the log's checkpoint does not verify: {failure}") from failure
        return checkpoint, failure

    def _verify_after_rotation(self, note: str, failure: NoteError) -> None:
        try:
            open_note(note, self.verifiers)
        except NoteError as exc:
            self.state.drop_unverified(self.origin)
            raise MirrorError(
                f"the log's checkpoint does not verify: {failure} (and no log key rotation "
                f"in its entries introduces a key that signed it: {exc})"
            ) from exc

    def _start(self, checkpoint: Checkpoint, note: str, held: Held) -> _Run:
        latest = self.state.latest(self.origin)
        cosigned = (latest.size, latest.root) if latest and latest.checkpoint else None
        return _Run(
            checkpoint,
            note,
            merkle.TreeBuilder.resume(held.size, held.frontier),
            self._keyring(held.size),
            cosigned,
            held.checked_cosigned,
        )

    def _keyring(self, size: int) -> Keyring:
        """The keyring the copy's key entries (all verified) leave at ``size``."""
        keyring = Keyring()
        for index, leaf in self.state.key_leaves(self.origin, size, CORE_KEY_KINDS):
            reason = self._admit(keyring, index, leaf)
            if reason:  # they were checked when copied: the state file was changed
                raise RuntimeError(f"the copy's key history no longer replays: {reason}")
        return keyring

    def _fetch(self, run: _Run, held: Held) -> tuple[Fault | None, bool]:
        """Read, check and stage the entries from ``held.size`` to the checkpoint's size."""
        size = run.checkpoint.size
        for n in range(held.size // WIDTH, -(-size // WIDTH)):
            width = min(WIDTH, size - n * WIDTH)
            path = tile_path(ENTRIES, n, width)
            try:
                leaves = read_entry_bundle(self.tiles.get(path))
            except TileError as exc:
                raise MirrorError(f"{path}: {exc}") from exc
            if len(leaves) != width:
                raise MirrorError(f"{path} holds {len(leaves)} entries, not {width}")
            rows = []
            for i in range(max(0, held.size - n * WIDTH), width):
                index = n * WIDTH + i
                kind, reason = self._check(run, index, leaves[i])
                if reason is not None:
                    self.state.drop_unverified(self.origin)
                    return self.state.record_fault(
                        self.origin, "entry", index, reason, run.note, leaves[i]
                    )
                leaf_hash = sha256(b"\x00" + leaves[i]).digest()
                run.builder.push(leaf_hash)
                rows.append((index, kind, leaves[i], leaf_hash))
                fault = self._check_cosigned_on_the_way(run)
                if fault is not None:
                    self.state.drop_unverified(self.origin)
                    return fault
            self.state.stage(self.origin, rows)
        return None, False

    def _check(self, run: _Run, index: int, leaf: bytes) -> tuple[str, str | None]:
        """The leaf's kind, and why it fails its checks (``None`` if it passes)."""
        head = HEAD.match(leaf)
        if head is None:
            return "", "leaf is malformed: it does not have the leaf layout"
        author, kind = head.group(1).decode(), head.group(3).decode()
        # The genesis registers its own signer: it is admitted before its author is looked
        # up, as the offline verifier does; any other key entry after its own checks.
        if index == 0 and (reason := self._admit(run.keyring, index, leaf)):
            return kind, reason
        try:
            public_key = run.keyring.public_key_for(author, index)
        except KeyringError as exc:
            return kind, str(exc)
        reason = check_leaf(index, leaf, public_key, run.keys, entry_context(self.origin))
        if reason is None and index != 0 and kind in CORE_KEY_KINDS:
            reason = self._admit(run.keyring, index, leaf)
        return kind, reason

    def _admit(self, keyring: Keyring, index: int, leaf: bytes) -> str | None:
        """Replay a key entry on ``keyring`` as the offline verifier does: every key entry
        the mirror meets, new or from its copy when it resumes, passes here."""
        try:
            entry = _key_entry(index, leaf)
        except (EnvelopeError, KeyError, TypeError) as exc:
            return f"leaf is malformed: {exc}"
        if entry.leaf.index != index:
            return f"leaf says it is at index {entry.leaf.index}"
        old_log_key = keyring.keys.get(keyring.log_key) if keyring.log_key else None
        result = Result()
        admit(keyring, entry, self._genesis_verifier(entry), result)
        if result.failures:
            return result.failures[0]
        if entry.kind == LOG_ROTATION and old_log_key is not None:
            return self._follow_rotation(index, leaf, old_log_key.public_key)
        return None

    def _follow_rotation(self, index: int, leaf: bytes, old_public_key: bytes) -> str | None:
        """A ``log.key_rotated`` entry the key history admitted: trust the new log key
        for the log's checkpoints, from the entry itself (both keys' signatures)."""
        try:
            vkey = read_log_key_rotation(leaf, self.origin, old_public_key)
        except KeyringError as exc:
            return f"log key rotation: {exc}"
        verifier = parse_verifier_key(vkey)
        if verifier not in self.verifiers:
            self.trust(verifier)
            self.say(f"{self.origin}: the log key rotated at index {index}; now trusting {vkey}")
        return None

    def _genesis_verifier(self, entry: KeyEntry) -> Verifier:
        """Of the log's keys, the one the genesis registers (the first if none is)."""
        if entry.index == 0:
            try:
                raw = base64.b64decode(entry.payload["key"]["public_key"], validate=True)
            except (KeyError, TypeError, ValueError):
                raw = b""
            for verifier in self.verifiers:
                if verifier.public_key == raw:
                    return verifier
        return self.verifiers[0]

    def _check_cosigned_on_the_way(self, run: _Run) -> tuple[Fault, bool] | None:
        """The copy, at the size this witness cosigned, must have the cosigned root."""
        if run.cosigned is None or run.builder.size != run.cosigned[0]:
            return None
        run.checked_cosigned = run.cosigned[0]
        if run.builder.root() == run.cosigned[1]:
            return None
        return self._cosigned_fault(run.cosigned[0])

    def _finish(self, run: _Run, held: Held) -> tuple[Fault | None, bool]:
        """The rebuilt tree has the checkpoint's root: the staged entries are verified."""
        root = run.builder.root()
        if root != run.checkpoint.root:
            self.state.drop_unverified(self.origin)
            return self.state.record_fault(
                self.origin,
                "root",
                run.checkpoint.size,
                f"the {run.checkpoint.size} entries served do not give the root the log "
                f"signed for that size",
                run.note,
            )
        self.state.verified(
            self.origin,
            held.size,
            Held(run.checkpoint.size, root, run.builder.frontier(), run.note, run.checked_cosigned),
        )
        return None, False

    def _behind(self, checkpoint: Checkpoint, note: str, held: Held) -> tuple[Fault | None, bool]:
        """A checkpoint no larger than the copy: its root must be the copy's at its size."""
        if checkpoint.size == held.size:
            root = held.root
        else:
            root = self.state.root_at(self.origin, checkpoint.size)
        if root == checkpoint.root:
            return None, False
        return self.state.record_fault(
            self.origin,
            "root",
            checkpoint.size,
            f"the log signed another root for size {checkpoint.size} than the copy's "
            f"entries give (a fork or a rollback)",
            note,
        )

    def _check_cosigned_held(self) -> tuple[Fault | None, bool]:
        """A checkpoint cosigned since the copy passed its size: compare it with the copy."""
        latest = self.state.latest(self.origin)
        held = self.state.held(self.origin)
        if latest is None or latest.checkpoint is None:
            return None, False
        if latest.size > held.size or latest.size == held.checked_cosigned:
            return None, False
        root = (
            held.root if latest.size == held.size else self.state.root_at(self.origin, latest.size)
        )
        if root != latest.root:
            return self._cosigned_fault(latest.size)
        self.state.verified(self.origin, held.size, held, checked_cosigned=latest.size)
        return None, False

    def _cosigned_fault(self, size: int) -> tuple[Fault, bool]:
        latest = self.state.latest(self.origin)
        return self.state.record_fault(
            self.origin,
            "cosigned",
            size,
            f"the entries served do not give the root of the checkpoint of size {size} "
            f"this witness cosigned (the log showed the witness another history)",
            latest.checkpoint if latest else None,
        )

    def _alarm(self, fault: Fault, new: bool) -> None:
        what = "NEW EVIDENCE" if new else "evidence held"
        self.say(
            f"MIRROR ALARM ({what}) against {fault.origin}: fault #{fault.id} ({fault.kind}, "
            f"at {fault.position}): {fault.reason}. This witness cosigns no more "
            f"checkpoints of this log."
        )


def _key_entry(index: int, leaf: bytes) -> KeyEntry:
    parsed = parse_leaf(leaf)
    env = parsed.envelope
    return KeyEntry(index, leaf, env["kind"], env["author"], env["payload"], parsed)


# --- many logs, continuously ---------------------------------------------------------------


def parse_mirror(spec: str) -> tuple[str, str]:
    """``"<origin> <tiles base URL>"`` as (origin, URL)."""
    origin, sep, url = spec.rpartition(" ")
    if not sep or not origin or not url.startswith(("http://", "https://")):
        raise ValueError(f"--mirror {spec!r} is '<origin> <tiles base URL>'")
    return origin, url


def sync_all(mirrors: list[Mirror], say: Callable[[str], None]) -> tuple[bool, bool]:
    """Sync each log once: (whether evidence is held against any, whether any failed)."""
    evidence = failed = False
    for mirror in mirrors:
        try:
            done = mirror.sync()
        except MirrorError as exc:
            failed = True
            say(f"mirror {mirror.origin}: could not sync: {exc}")
            continue
        if done.fault is not None:
            evidence = True
        elif done.fetched:
            rate = done.fetched / done.seconds if done.seconds else 0.0
            say(
                f"mirror {mirror.origin}: {done.fetched} entries verified and kept "
                f"({done.before} -> {done.after}, {rate:,.0f} entries/s)"
            )
    return evidence, failed


class Follower(threading.Thread):
    """Sync the mirrors every ``interval`` seconds, in the background, until stopped."""

    def __init__(self, mirrors: list[Mirror], interval: float, say: Callable[[str], None]):
        super().__init__(name="mirror", daemon=True)
        self.mirrors, self.interval, self.say = mirrors, interval, say
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                sync_all(self.mirrors, self.say)
            except Exception as exc:  # a bug or a damaged state file: say it, keep serving
                self.say(f"mirror: sync failed: {type(exc).__name__}: {exc}")
            self.stopped.wait(self.interval)

    def stop(self) -> None:
        self.stopped.set()
