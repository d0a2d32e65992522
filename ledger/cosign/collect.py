"""Collecting cosignatures: each checkpoint, sent to every registered witness at once.

The request is C2SP tlog-witness v1.0.0's ``POST <prefix>/add-checkpoint``: ``old <N>``
(the size the witness last cosigned, as far as the log knows), the consistency proof
from ``N`` lines of base64, a blank line, the checkpoint as signed. The answers:

- 200: the body's cosignature lines, each verified under the witness's registered keys
  (Ed25519 cosignature/v1; ML-DSA-44 where the witness registered one and the
  ``cryptography`` package provides it) before it is kept;
- 409 (``text/x.tlog.size``): the witness holds another size; the request is sent again
  with a proof from that size (up to ``LEDGER_WITNESS_RETRIES`` times), unless the size
  is ahead of the checkpoint's, which is an alarm: the witness cosigned a larger tree
  than the log now shows (a rollback, or a fork shown to it);
- 422: the witness refuses the checkpoint as inconsistent with what it cosigned: an
  alarm (a fork or a rollback), never retried;
- anything else (unreachable, timeout, 4xx, 5xx): the witness's last error, and the next
  checkpoint is sent to it again.

The request goes only where :mod:`ledger.cosign.egress` permits: the host is resolved
once, each address checked, and the connection made to a checked address; a refused
one is the witness's last error (named, with why), never an alarm.

The HTTP requests run in threads, one per witness, with ``LEDGER_WITNESS_TIMEOUT``
seconds each; the database is read and written only by the calling thread, between the
rounds of requests.
"""

from __future__ import annotations

import http.client
import logging
import re
import ssl
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

from django.conf import settings

from ledger import published
from ledger.core.note import NoteError, b64, split_note
from ledger.cosign import egress
from ledger.cosign.models import Cosignature, Witness, WitnessAlarm, WitnessContact
from ledger.models import Checkpoint
from ledger.proofs import consistency_proof
from ledger.witness.cosignature import parse_cosignature_vkey

log = logging.getLogger("ledger.log")

SIZE_TYPE = "text/x.tlog.size"
_SIZE_RE = re.compile(r"(0|[1-9][0-9]{0,18})\n")
MAX_REPLY = 64 * 1024


@dataclass(frozen=True)
class Reply:
    status: int
    content_type: str
    text: str


@dataclass
class Attempt:
    """One witness's exchange over one checkpoint."""

    witness: Witness
    old: int
    tries: int = 0
    outcome: str = ""
    lines: list[str] = field(default_factory=list)


def post(url: str, body: bytes, timeout: float, *, tls: ssl.SSLContext | None = None) -> Reply:
    """POST ``body`` to ``<url>/add-checkpoint``; raises ``OSError`` (and
    ``http.client.HTTPException``) when there is no answer, and
    :class:`~ledger.cosign.egress.EgressRefused` when the URL's host is somewhere the
    server does not send requests. ``tls``: the context for https (the system's
    certificate authorities by default). No redirect is followed."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise egress.EgressRefused(f"{url} is not an http(s) URL")
    if parts.username is not None or parts.password is not None:
        raise egress.EgressRefused("a URL with user information is not used")
    try:
        port = parts.port
    except ValueError as exc:
        raise egress.EgressRefused(f"{url}: not a valid port ({exc})") from exc
    if parts.scheme == "https":
        conn = egress.PinnedTLSConnection(
            parts.hostname,
            port,
            timeout=timeout,
            tls=tls or ssl.create_default_context(),
        )
    else:
        conn = egress.PinnedConnection(parts.hostname, port, timeout=timeout, tls=None)
    try:
        conn.request(
            "POST",
            (parts.path or "") + "/add-checkpoint",
            body=body,
            headers={"Content-Type": "text/plain; charset=utf-8"},
        )
        resp = conn.getresponse()
        data = resp.read(MAX_REPLY + 1)
        ctype = (resp.getheader("Content-Type") or "").split(";")[0].strip().lower()
        return Reply(resp.status, ctype, data[:MAX_REPLY].decode("utf-8", "replace"))
    finally:
        conn.close()


def request_body(old: int, size: int, note: str) -> bytes:
    """``old <N>``, the consistency proof from ``N`` to ``size``, a blank line, the note."""
    proof = [] if old in (0, size) else consistency_proof(old, size)
    lines = [f"old {old}", *(b64(h) for h in proof)]
    return ("\n".join(lines) + "\n\n" + note).encode()


def active_witnesses() -> list[Witness]:
    return list(Witness.objects.filter(retired_in__isnull=True).order_by("name"))


def collect(checkpoint: Checkpoint, *, only_missing: bool = False) -> dict[str, str]:
    """Send ``checkpoint`` to every active witness (``only_missing``: those that have
    neither cosigned it nor raised an alarm over it) and keep what they answer. Returns
    each witness's outcome: ``cosigned``, ``alarm: ...`` or ``error: ...``."""
    witnesses = active_witnesses()
    if only_missing:
        # Neither those that cosigned it nor those that raised an alarm over it: an
        # alarm is raised once per checkpoint, never retried into a stream of them.
        done = set(checkpoint.cosignatures.values_list("witness", flat=True))
        done |= set(
            WitnessAlarm.objects.filter(log_size=checkpoint.tree_size).values_list(
                "witness", flat=True
            )
        )
        witnesses = [w for w in witnesses if w.name not in done]
    if not witnesses:
        return {}
    known = dict(
        WitnessContact.objects.filter(witness__in=[w.name for w in witnesses]).values_list(
            "witness", "last_size"
        )
    )
    size = checkpoint.tree_size
    attempts = []
    for w in witnesses:
        last = known.get(w.name, 0)
        # A witness the log believes ahead of it is asked from 0: its 409 then says, in
        # its own words, the size it holds.
        attempts.append(Attempt(w, last if last <= size else 0))
    pending = attempts
    retries = settings.LEDGER_WITNESS_RETRIES
    timeout = settings.LEDGER_WITNESS_TIMEOUT
    with ThreadPoolExecutor(max_workers=min(32, len(pending))) as pool:
        while pending:
            bodies = [request_body(a.old, size, checkpoint.note) for a in pending]
            replies = list(pool.map(lambda a, b: _exchange(a, b, timeout), pending, bodies))
            again = []
            for attempt, reply in zip(pending, replies, strict=True):
                attempt.tries += 1
                if _answer(attempt, reply, checkpoint) and attempt.tries <= retries:
                    again.append(attempt)
                elif not attempt.outcome:
                    attempt.outcome = (
                        f"error: still 409 after {attempt.tries} requests "
                        f"(the witness holds size {attempt.old})"
                    )
                    _contact(attempt.witness, error=attempt.outcome[7:])
            pending = again
    return {a.witness.name: a.outcome for a in attempts}


def _exchange(attempt: Attempt, body: bytes, timeout: float) -> Reply | Exception:
    try:
        return post(attempt.witness.url, body, timeout)
    except (OSError, http.client.HTTPException, egress.EgressRefused) as exc:
        return exc


def _answer(attempt: Attempt, reply: Reply | Exception, checkpoint: Checkpoint) -> bool:
    """Act on one answer; ``True`` if the request is to be sent again from ``attempt.old``."""
    w, size = attempt.witness, checkpoint.tree_size
    if isinstance(reply, egress.EgressRefused):
        return _failed(attempt, str(reply))
    if isinstance(reply, Exception):
        return _failed(attempt, f"no answer from {w.url}: {reply}")
    if reply.status == 200:
        try:
            kept = keep_cosignatures(w, checkpoint, reply.text)
        except NoteError as exc:
            return _failed(attempt, f"200 without a valid cosignature: {exc}")
        attempt.outcome = "cosigned"
        attempt.lines = kept
        _contact(w, size=size, error="")
        return False
    if reply.status == 409:
        match = _SIZE_RE.fullmatch(reply.text) if reply.content_type == SIZE_TYPE else None
        if match is None:
            return _failed(attempt, f"409 without a {SIZE_TYPE} body: {_said(reply)!r}")
        held = int(match.group(1))
        if held > size:
            _alarm(
                attempt,
                WitnessAlarm.Kind.AHEAD,
                size,
                held,
                f"the witness holds size {held}, ahead of the log's checkpoint at {size}",
            )
            _contact(w, size=held, error=f"ahead of the log: it holds size {held}")
            # Kept outside the database too: a database restored from an old backup
            # stays read-only until it holds what this witness cosigned (ledger.published).
            published.record_witnessed(w.name, held)
            return False
        if held == attempt.old:
            return _failed(attempt, f"409 naming the size that was sent ({held})")
        attempt.old = held
        _contact(w, size=held, error="")
        return True
    if reply.status == 422:
        _alarm(
            attempt,
            WitnessAlarm.Kind.REFUSED,
            size,
            attempt.old,
            f"the witness refused size {size} from old {attempt.old}: {_said(reply, 1000)}",
        )
        _contact(w, error=f"422: {_said(reply)}")
        return False
    return _failed(attempt, f"{reply.status}: {_said(reply)}")


def _said(reply: Reply, limit: int = 300) -> str:
    """What the witness said, as its errors and alarms quote it. A witness answers in
    plain text; anything else at its URL is not quoted (its body would be shown to every
    reader of the ledger)."""
    if reply.content_type != "text/plain":
        return "(no text/plain answer)"
    return reply.text.strip()[:limit]


def _failed(attempt: Attempt, error: str) -> bool:
    attempt.outcome = f"error: {error}"
    log.warning("witness %s: %s", attempt.witness.name, error)
    _contact(attempt.witness, error=error)
    return False


def _alarm(attempt: Attempt, kind: str, log_size: int, witness_size: int | None, detail: str):
    attempt.outcome = f"alarm: {detail}"
    WitnessAlarm.objects.create(
        witness=attempt.witness.name,
        kind=kind,
        log_size=log_size,
        witness_size=witness_size,
        detail=detail,
        raised_at=datetime.now(UTC),
    )
    log.critical(
        "WITNESS ALARM (%s) from %s of %s: %s; a fork or a rollback of the log is possible",
        kind,
        attempt.witness.name,
        attempt.witness.member,
        detail,
    )


def _contact(witness: Witness, *, size: int | None = None, error: str | None = None) -> None:
    values = {"last_contact": datetime.now(UTC)}
    if size is not None:
        values["last_size"] = size
    if error is not None:
        values["last_error"] = error[:2000]
    WitnessContact.objects.update_or_create(witness=witness.name, defaults=values)


UNCHECKABLE = object()  # a registered ML-DSA-44 key, where cryptography lacks ML-DSA-44


def verifiers_of(witness: Witness) -> dict[tuple[str, bytes], object]:
    """The witness's cosignature verifiers by (name, key id); its ML-DSA-44 key maps to
    :data:`UNCHECKABLE` where the ``cryptography`` package here does not provide it."""
    ed = parse_cosignature_vkey(witness.vkey)
    found = {(ed.name, ed.key_id): ed}
    if witness.mldsa_vkey:
        from ledger.witness.mldsa import AVAILABLE, parse_mldsa_vkey

        pq = parse_mldsa_vkey(witness.mldsa_vkey)
        found[(pq.name, pq.key_id)] = pq if AVAILABLE else UNCHECKABLE
    return found


def keep_cosignatures(witness: Witness, checkpoint: Checkpoint, reply: str) -> list[str]:
    """Verify a 200's cosignature lines under the witness's keys and store them.

    Every line must be a signature line by one of the witness's registered keys that
    verifies on the checkpoint; the Ed25519 one must be there. Nothing is stored unless
    all of them do. A line by its ML-DSA-44 key, where this server cannot check one, is
    left out (never kept unchecked)."""
    body, _ = split_note(checkpoint.note)
    if not reply.endswith("\n") or not reply.strip():
        raise NoteError("the reply is not signature lines")
    _, sigs = split_note(body + "\n" + reply)
    verifiers = verifiers_of(witness)
    lines = reply[:-1].split("\n")
    rows, seen = [], set()
    for line, sig in zip(lines, sigs, strict=True):
        verifier = verifiers.get((sig.name, sig.key_id))
        if verifier is None:
            raise NoteError(f"a line by {sig.name} ({sig.key_id.hex()}), not a registered key")
        if verifier is UNCHECKABLE:
            log.warning(
                "witness %s: its ML-DSA-44 cosignature cannot be checked here", witness.name
            )
            continue
        timestamp = verifier.verify(body, sig.signature)
        seen.add(sig.key_id)
        rows.append((sig.key_id.hex(), line + "\n", timestamp))
    ed = parse_cosignature_vkey(witness.vkey)
    if ed.key_id not in seen:
        raise NoteError("no Ed25519 cosignature by the registered key")
    now = datetime.now(UTC)
    for key_id, line, timestamp in rows:
        if not Cosignature.objects.filter(
            checkpoint=checkpoint, witness=witness.name, key_id=key_id
        ).exists():
            Cosignature.objects.create(
                checkpoint=checkpoint,
                witness=witness.name,
                key_id=key_id,
                line=line,
                timestamp=timestamp,
                received_at=now,
            )
    return [line for _, line, _ in rows]
