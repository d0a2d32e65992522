"""Checking batches of leaves: structure, canonical form, signature.

Pure Python with PyNaCl, no Django, so that verification can fan batches out to
worker processes (this module is all a worker imports).
"""

from __future__ import annotations

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from ledger.core.envelope import EnvelopeError, parse_leaf, signing_message

# One item: (index, leaf bytes, author public key or None, kind column, author column).
Item = tuple[int, bytes, bytes | None, str, str]


def check_leaves(batch: list[Item]) -> list[tuple[int, str]]:
    """Return (index, reason) for every leaf in ``batch`` that fails a check."""
    failures = []
    keys: dict[bytes, VerifyKey] = {}
    for index, leaf, public_key, kind, author in batch:
        try:
            parsed = parse_leaf(leaf, check_payload=False)
        except EnvelopeError as exc:
            failures.append((index, f"leaf is malformed: {exc}"))
            continue
        env = parsed.envelope
        if parsed.index != index:
            failures.append((index, f"leaf says it is at index {parsed.index}"))
            continue
        if env["kind"] != kind or env["author"] != author:
            failures.append((index, "the stored kind or author column differs from the leaf"))
            continue
        if public_key is None:
            continue  # the key problem is reported by the caller
        vk = keys.get(public_key)
        if vk is None:
            vk = keys[public_key] = VerifyKey(public_key)
        try:
            vk.verify(signing_message(parsed.envelope_bytes), parsed.signature)
        except BadSignatureError:
            failures.append((index, "the author's signature does not verify"))
    return failures
