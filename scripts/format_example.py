#!/usr/bin/env python3
"""Recompute the worked example of ``docs/ledger-format.md`` and check the document.

    python3 scripts/format_example.py            # print every value, name and value
    python3 scripts/format_example.py --check    # exit 1 if the document differs

The example ledger (section 9: a genesis, a member key and a member's entry, with
fixed keys, ids and times, and a log key rotation) is rebuilt here with the project's
own modules (``ledger.core``: envelopes, keyring, Merkle tree, notes), so its bytes are
those the ledger writes. ``--check`` requires that every value computed here appears in
the document, and that every hash, key, signature and leaf written in sections 8 to 10
is one of them: the document cannot drift from the format. ``tests/ledger/
test_format_example.py`` runs the check.

Needs PyNaCl and ``rfc8785`` (the project's own dependencies).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nacl.signing import SigningKey  # noqa: E402

from ledger.core import merkle  # noqa: E402
from ledger.core.envelope import (  # noqa: E402
    ENTRY_CONTEXT,
    build_leaf,
    key_fingerprint,
    new_envelope,
    parse_time,
    sign_envelope,
    signing_message,
)
from ledger.core.keyring import (  # noqa: E402
    Keyring,
    descriptor,
    read_log_key_rotation,
    rotation_message,
)
from ledger.core.note import Checkpoint, Signer, key_id, sign_note, verifier_key  # noqa: E402

DOC = ROOT / "docs" / "ledger-format.md"
ORIGIN = "ledger.consortium.example"
LOG_SEED = bytes(range(32))
MEMBER_SEED = bytes(range(0x20, 0x40))
NEW_LOG_SEED = bytes(range(0x40, 0x60))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _signed(key: SigningKey, kind: str, payload: dict, entry_id: str, time: str):
    env = new_envelope(
        kind=kind,
        payload=payload,
        author=key_fingerprint(bytes(key.verify_key)),
        entry_id=entry_id,
        time=parse_time(time),
    )
    return sign_envelope(env, key, ORIGIN)


def example() -> dict[str, str]:
    """Every value of the worked example, by name, as the document writes it."""
    log_key = SigningKey(LOG_SEED)
    log_pub = bytes(log_key.verify_key)
    member = SigningKey(MEMBER_SEED)
    member_pub = bytes(member.verify_key)
    v: dict[str, str] = {"log key seed": LOG_SEED.hex(), "member key seed": MEMBER_SEED.hex()}
    v["log public key (hex)"] = log_pub.hex()
    v["log public key (base64)"] = b64(log_pub)
    v["log key fingerprint"] = key_fingerprint(log_pub)

    log_desc = descriptor(
        public_key=log_pub, kind="log", owner=ORIGIN, custody="hosted", name=ORIGIN
    )
    genesis = _signed(
        log_key,
        "log.genesis",
        {"origin": ORIGIN, "key": log_desc},
        "0f8e3c1a-7b2d-4e5f-9a6b-1c2d3e4f5a6b",
        "2026-01-31T12:00:00.000000Z",
    )
    message = signing_message(genesis.envelope_bytes, ORIGIN)
    v["entry context (hex)"] = ENTRY_CONTEXT.hex()
    v["context and origin line (hex)"] = message[: len(message) - len(genesis.envelope_bytes)].hex()
    v["genesis envelope"] = genesis.envelope_bytes.decode()
    v["genesis envelope length"] = str(len(genesis.envelope_bytes))
    v["signing message length"] = str(len(message))
    v["signing message SHA-256"] = hashlib.sha256(message).hexdigest()
    v["genesis signature (base64)"] = b64(genesis.signature)
    v["genesis signature (hex)"] = genesis.signature.hex()

    member_desc = descriptor(
        public_key=member_pub, kind="member", owner="FR", custody="external", name="member-fr"
    )
    registered = _signed(
        log_key,
        "key.registered",
        {"key": member_desc},
        "5d9b2c7e-3f41-4a8b-b6c5-2e7d8f9a0b1c",
        "2026-01-31T12:05:00.000000Z",
    )
    funds = _signed(
        member,
        "funds.sample",
        {"amount": "250000.00", "currency": "EUR", "member": "FR", "n": 2},
        "fr-funds-0001",
        "2026-01-31T12:06:00.000000Z",
    )
    times = (
        "2026-01-31T12:00:01.250000Z",
        "2026-01-31T12:05:00.400000Z",
        "2026-01-31T12:06:00.900000Z",
    )
    leaves = [
        build_leaf(s.envelope_bytes, i, times[i], s.signature)
        for i, s in enumerate((genesis, registered, funds))
    ]
    keyring = Keyring()
    for i, s in enumerate((genesis, registered, funds)):
        keyring.admit(i, s.kind, s.envelope["payload"], s.author)
    hashes = [merkle.leaf_hash(leaf) for leaf in leaves]
    tree = merkle.TreeBuilder()
    roots = []
    for h in hashes:
        tree.push(h)
        roots.append(tree.root())
    for i, leaf in enumerate(leaves):
        v[f"leaf {i}"] = leaf.decode()
        v[f"leaf hash {i}"] = hashes[i].hex()
        v[f"leaf hash {i} (base64)"] = b64(hashes[i])
        v[f"root, size {i + 1}"] = roots[i].hex()
        v[f"root, size {i + 1} (base64)"] = b64(roots[i])
    v["leaf 0 length"] = str(len(leaves[0]))
    v["leaf 1 signature"] = b64(registered.signature)
    v["leaf 2 signature"] = b64(funds.signature)
    v["leaf 2 (base64)"] = b64(leaves[2])

    signer = Signer(ORIGIN, log_key)
    v["key id"] = key_id(ORIGIN, log_pub).hex()
    v["verifier key"] = verifier_key(ORIGIN, log_pub)
    one = Checkpoint(ORIGIN, 1, roots[0]).body()
    note1 = sign_note(one, signer)
    v["checkpoint 1"] = note1
    v["checkpoint 1 as a string literal"] = json.dumps(note1)
    v["checkpoint 1 length"] = str(len(note1.encode()))
    v["checkpoint 1 body length"] = str(len(one.encode()))
    v["checkpoint 1 signature line"] = note1.rstrip("\n").rsplit(" ", 1)[1]
    v["checkpoint 1 signature (hex)"] = base64.b64decode(v["checkpoint 1 signature line"])[4:].hex()
    note3 = sign_note(Checkpoint(ORIGIN, 3, roots[2]).body(), signer)
    v["checkpoint 3"] = note3
    v["checkpoint 3 signature line"] = note3.rstrip("\n").rsplit(" ", 1)[1]
    v["member public key (hex)"] = member_pub.hex()
    v["member public key (base64)"] = b64(member_pub)
    v["member fingerprint"] = key_fingerprint(member_pub)
    v["member verifier key"] = verifier_key("member-fr", member_pub)
    v.update(_rotation(log_key, keyring, leaves, hashes))
    return v


def _rotation(log_key: SigningKey, keyring: Keyring, leaves, hashes) -> dict[str, str]:
    """Index 3: the log key rotated to the key of seed 40..5f, and the checkpoint of size
    4, the first the new key signs."""
    new = SigningKey(NEW_LOG_SEED)
    new_pub = bytes(new.verify_key)
    old_fp = key_fingerprint(bytes(log_key.verify_key))
    new_desc = descriptor(
        public_key=new_pub, kind="log", owner=ORIGIN, custody="hosted", name=ORIGIN
    )
    message = rotation_message(ORIGIN, old_fp, new_desc["fingerprint"])
    payload = {
        "fingerprint": old_fp,
        "key": new_desc,
        "signature": b64(new.sign(message).signature),
    }
    rotated = _signed(
        log_key, "log.key_rotated", payload, "log-key-rotation-1", "2026-02-01T09:00:00.000000Z"
    )
    leaf = build_leaf(rotated.envelope_bytes, 3, "2026-02-01T09:00:00.300000Z", rotated.signature)
    keyring.admit(3, rotated.kind, payload, rotated.author)
    tree = merkle.TreeBuilder()
    for h in [*hashes, merkle.leaf_hash(leaf)]:
        tree.push(h)
    note4 = sign_note(Checkpoint(ORIGIN, 4, tree.root()).body(), Signer(ORIGIN, new))
    vkey = read_log_key_rotation(leaf, ORIGIN, bytes(log_key.verify_key))
    assert vkey == verifier_key(ORIGIN, new_pub)
    assert keyring.log_key_for_size(3).public_key == bytes(log_key.verify_key)
    assert keyring.log_key_for_size(4).public_key == new_pub
    return {
        "new log key seed": NEW_LOG_SEED.hex(),
        "new log public key (base64)": b64(new_pub),
        "new log key fingerprint": new_desc["fingerprint"],
        "rotation message (hex)": message.hex(),
        "rotation signature by the new key": payload["signature"],
        "leaf 3": leaf.decode(),
        "leaf hash 3": merkle.leaf_hash(leaf).hex(),
        "root, size 4": tree.root().hex(),
        "new verifier key": vkey,
        "checkpoint 4": note4,
    }


# Hashes, keys, signatures and leaves as the document writes them: long runs of hex or
# base64, and the leaves' JSON lines.
TOKEN = re.compile(r"[A-Za-z0-9+/]{40,}={0,2}")


def check(text: str, values: dict[str, str]) -> list[str]:
    """What differs between the document and the values (empty when none)."""
    problems = [
        f"{name} is not in the document: {value[:80]}"
        for name, value in values.items()
        if value not in text
    ]
    start = text.index("## 8. API documents")
    end = text.index("## The consortium's entry kinds")
    known = set()
    for value in values.values():
        known.update(TOKEN.findall(value))
        known.add(value)
    for token in TOKEN.findall(text[start:end]):
        if token not in known and not any(token in value for value in values.values()):
            problems.append(f"the document writes a value the example does not make: {token[:80]}")
    return problems


def run_snippet(text: str, values: dict[str, str]) -> list[str]:
    """Run section 10's verifier snippet on the example: the checkpoint of size 3, entry
    2 and its inclusion proof pass; a changed size or leaf hash fails."""
    start = text.index("## 10. Verifying offline")
    begin = text.index("```python\n", start) + len("```python\n")
    code = text[begin : text.index("\n```", begin)]
    scope: dict = {}
    exec(compile(code, "docs/ledger-format.md section 10", "exec"), scope)  # noqa: S102
    leaf = values["leaf 2"].encode()
    entry = {
        "index": 2,
        "leaf": b64(leaf),
        "leaf_hash": b64(hashlib.sha256(b"\x00" + leaf).digest()),
    }
    member = base64.b64decode(values["member public key (base64)"])
    proof = [bytes.fromhex(values["root, size 2"])]

    def verify(note: str, entry: dict, size_delta: int = 0) -> None:
        origin, size, root = scope["open_checkpoint"](note, values["verifier key"])
        lh = scope["check_entry"](entry, member, origin)
        got = scope["root_from_inclusion"](2, size + size_delta, lh, proof)
        scope["need"](got == root, "not included")

    problems = []
    try:
        verify(values["checkpoint 3"], entry)
    except Exception as exc:
        problems.append(f"section 10's snippet refuses the example: {exc!r}")
    bad_hash = {**entry, "leaf_hash": b64(bytes(32))}
    for what, args in (("a changed leaf hash", (bad_hash,)), ("another size", (entry, 1))):
        try:
            verify(values["checkpoint 3"], *args)
        except Exception:  # noqa: S112 - any refusal is the expected outcome
            continue
        problems.append(f"section 10's snippet accepts {what}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="Check docs/ledger-format.md.")
    parser.add_argument("--doc", type=Path, default=DOC, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    values = example()
    if not args.check:
        print(json.dumps(values, indent=2))
        return 0
    text = args.doc.read_text(encoding="utf-8")
    problems = check(text, values) + run_snippet(text, values)
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print(f"{args.doc.name}: the worked example is the format's ({len(values)} values)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
