"""Checking batches of leaves: structure, signature, and (strictly) canonical form.

Pure Python with PyNaCl, no Django, so that verification can fan batches out to
worker processes (this module is all a worker imports).

The default check reads a leaf by its fixed layout, which JCS makes exact: the
envelope's first three members (author, id, kind) and the leaf's last four (time,
index, integrated_time, signature) can only be written one way, and none of their
values may contain a quote or a backslash. Two anchored regular expressions check
every byte of that frame, and the payload between them is parsed to prove it is one
JSON object, without repeated members, that fills exactly its place: so what a JSON
reader sees is what was checked. The author's signature covers the envelope bytes.
``strict=True`` instead parses the whole leaf and checks it is canonical (RFC 8785)
member by member.
"""

from __future__ import annotations

import base64
import json
import re
from hashlib import sha256

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from ledger.core.envelope import EnvelopeError, entry_context, parse_leaf

_TIME = rb"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?Z"
HEAD = re.compile(
    rb'\{"entry":\{"author":"([0-9a-f]{64})","id":"([A-Za-z0-9][A-Za-z0-9._:-]{0,127})",'
    rb'"kind":"([a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+)","payload":\{'
)
TAIL = re.compile(
    rb'\},"time":"(' + _TIME + rb')"\},"index":(0|[1-9][0-9]{0,15}),'
    rb'"integrated_time":"(' + _TIME + rb')","signature":"([A-Za-z0-9+/]{86}==)"\}\Z'
)
_TAIL_MAX = 256  # bytes: the tail is at most about 200
_DECODER = json.JSONDecoder(object_pairs_hook=lambda pairs: _unique(pairs))


class _Repeated(ValueError):
    pass


def _unique(pairs: list) -> dict:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _Repeated("an object repeats a member")
    return obj


def payload_spans(leaf: bytes, start: int, end: int) -> bool:
    """Is ``leaf[start:end]`` exactly one JSON object, without repeated members?

    The frame fixes every byte before and after the payload; this proves the payload
    object closes exactly where the frame's tail begins, so no member can be slipped in
    after it (JSON readers take a repeated member's last value).
    """
    text = leaf[start:end].decode("utf-8", "strict")
    try:
        _, stop = _DECODER.raw_decode(text)
    except (ValueError, RecursionError):
        return False
    return stop == len(text)


# One item: (index, leaf bytes, author public key or None, and the stored columns:
# kind, author, leaf hash, entry id).
Item = tuple[int, bytes, bytes | None, str, str, bytes, str]


def check_leaves(
    batch: list[Item], origin: str, strict: bool = False
) -> tuple[list[tuple[int, str]], bytes]:
    """Check a batch of stored leaves of the log ``origin`` against their stored columns.

    Returns (index, reason) for every leaf that fails a check, and the leaf hashes
    recomputed from the leaf bytes, concatenated, for the caller to rebuild the tree.
    """
    failures = []
    hashes = []
    keys: dict[bytes, VerifyKey] = {}
    context = entry_context(origin)
    for index, leaf, public_key, kind, author, stored_hash, entry_id in batch:
        lh = sha256(b"\x00" + leaf).digest()
        hashes.append(lh)
        if lh != stored_hash:
            failures.append((index, "stored leaf hash is not the hash of the leaf bytes"))
        reason = check_leaf(
            index, leaf, public_key, keys, context, strict, (kind, author, entry_id)
        )
        if reason:
            failures.append((index, reason))
    return failures, b"".join(hashes)


def check_exported(
    batch: list[tuple[int, bytes, bytes | None]], origin: str
) -> tuple[list[tuple[int, str]], bytes]:
    """Check a batch of leaves of the log ``origin`` read from an export: (index, leaf
    bytes, author public key or ``None`` when the caller has reported the key problem).
    Same result shape as ``check_leaves``."""
    failures = []
    hashes = []
    keys: dict[bytes, VerifyKey] = {}
    context = entry_context(origin)
    for index, leaf, public_key in batch:
        hashes.append(sha256(b"\x00" + leaf).digest())
        reason = check_leaf(index, leaf, public_key, keys, context)
        if reason:
            failures.append((index, reason))
    return failures, b"".join(hashes)


def check_leaf(
    index: int,
    leaf: bytes,
    public_key: bytes | None,
    keys: dict[bytes, VerifyKey],
    context: bytes,
    strict: bool = False,
    stored: tuple[str, str, str] | None = None,
) -> str | None:
    """Why the leaf at ``index`` fails (its layout, index, stored columns, signature), or
    ``None``. ``keys`` caches verify keys between calls; ``context`` is
    ``entry_context(origin)``, what the signed message starts with."""
    head = HEAD.match(leaf)
    cut = max(0, len(leaf) - _TAIL_MAX)
    tail = TAIL.search(leaf, cut)
    if head is None or tail is None or tail.start() < head.end():
        return "leaf is malformed: it does not have the leaf layout"
    if strict:
        try:
            parse_leaf(leaf)
        except EnvelopeError as exc:
            return f"leaf is malformed: {exc}"
    else:
        try:
            spans = payload_spans(leaf, head.end() - 1, tail.start() + 1)
        except UnicodeDecodeError:
            spans = False
        if not spans:
            return "leaf is malformed: the payload is not one object filling its place"
    if int(tail.group(2)) != index:
        return f"leaf says it is at index {int(tail.group(2))}"
    if stored is not None and stored != (
        head.group(3).decode(),
        head.group(1).decode(),
        head.group(2).decode(),
    ):
        return "a stored column (kind, author or id) differs from the leaf"
    if public_key is None:
        return None  # the key problem is reported by the caller
    vk = keys.get(public_key)
    if vk is None:
        vk = keys[public_key] = VerifyKey(public_key)
    # The envelope runs from after '{"entry":' to the '}' closing it before ',"index":'.
    envelope = leaf[9 : tail.start(2) - len(b',"index":')]
    signature = base64.b64decode(tail.group(4))
    try:
        vk.verify(context + envelope, signature)
    except BadSignatureError:
        return "the author's signature does not verify"
    return None
