"""ML-DSA-44 cosignatures (C2SP tlog-cosignature v1.1.0-rc.1), where cryptography has them."""

from __future__ import annotations

import base64
import hashlib
import struct

import pytest

from ledger.core.note import NoteError, split_note
from ledger.witness import mldsa
from ledger.witness.cosignature import parse_cosignature_vkey, verify_cosignatures
from tests.steps.witness import TestLog, add, keygen, start_witness, stop


def test_the_signed_message_is_the_cosigned_message_structure():
    root = bytes(range(32))
    got = mldsa.subtree_message("w.example", 1679315147, "example.com/log", 0, 20852163, root)
    assert got == (
        b"subtree/v1\n\x00"
        + b"\x09w.example"
        + (1679315147).to_bytes(8, "big")
        + b"\x0fexample.com/log"
        + (0).to_bytes(8, "big")
        + (20852163).to_bytes(8, "big")
        + root
    )


def test_a_cosignature_round_trips_and_refuses_another_checkpoint():
    log = TestLog()
    note = log.checkpoint(7)
    body, _ = split_note(note)
    w = mldsa.generate_mldsa_cosigner("witness.example.org/pq")
    line = w.cosign(body, 1700000000)
    raw = base64.b64decode(line.split(" ")[2])
    pub = w.verifier.public_key
    assert len(pub) == 1312 and len(raw) == 4 + 8 + 2420
    assert raw[:4] == hashlib.sha256(b"witness.example.org/pq\n\x06" + pub).digest()[:4]
    assert struct.unpack(">Q", raw[4:12]) == (1700000000,)
    assert verify_cosignatures(note + line, w.verifier) == [1700000000]
    assert mldsa.parse_mldsa_vkey(w.verifier.vkey()) == w.verifier
    assert mldsa.parse_mldsa_skey(w.skey()).verifier == w.verifier
    with pytest.raises(NoteError, match="invalid cosignature"):
        verify_cosignatures(log.checkpoint(8) + line, w.verifier)


def test_a_witness_with_both_keys_returns_both_cosignatures(tmp_path):
    log = TestLog()
    ed_key, ed_vkey = keygen(tmp_path)
    pq_key, pq_vkey = keygen(tmp_path, "witness.example.org/pq", "ml-dsa-44")
    proc, addr = start_witness(tmp_path, [ed_key, pq_key], [f"{log.origin} {log.vkey}"])
    try:
        status, _, text, _ = add(addr, log.body(0, 5))
    finally:
        stop(proc)
    assert status == 200 and text.count("\n") == 2
    note = log.checkpoint(5) + text
    assert verify_cosignatures(note, parse_cosignature_vkey(ed_vkey))
    assert verify_cosignatures(note, mldsa.parse_mldsa_vkey(pq_vkey))
