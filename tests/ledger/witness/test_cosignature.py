"""Ed25519 cosignature/v1 (C2SP tlog-cosignature v1.0.0): bytes, keys and verification."""

from __future__ import annotations

import base64
import hashlib
import struct

import pytest
from nacl.signing import VerifyKey

from ledger.core.note import NoteError, split_note
from ledger.witness.cosignature import (
    cosignature_key_id,
    generate_cosigner,
    parse_cosignature_vkey,
    parse_cosigner_skey,
    verify_cosignatures,
)
from tests.steps.witness import TestLog

# The example of C2SP tlog-cosignature v1.0.0: a checkpoint with its log signature and a
# cosignature by witness.example.com/w1, whose message the spec prints with "time
# 1679315147". The spec gives no public key, so the line's layout is what it vouches for.
SPEC_COSIGNATURE = (
    "\u2014 witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJs"
    "X3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n"
)
SPEC_CHECKPOINT = (
    "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n"
    "\u2014 example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q"
    "1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n" + SPEC_COSIGNATURE
)


def test_the_spec_example_line_is_key_id_then_big_endian_timestamp_then_signature():
    _, sigs = split_note(SPEC_CHECKPOINT)
    cosig = sigs[1]
    assert cosig.name == "witness.example.com/w1"
    assert len(cosig.signature) == 8 + 64
    assert struct.unpack(">Q", cosig.signature[:8]) == (1679315147,)


def test_a_cosignature_signs_the_header_the_time_and_the_checkpoint_body():
    log = TestLog()
    note = log.checkpoint(5)
    body, _ = split_note(note)
    w = generate_cosigner("witness.example.org/w1")
    line = w.cosign(body, 1679315147)
    raw = base64.b64decode(line.split(" ")[2])
    assert line.startswith("\u2014 witness.example.org/w1 ")
    assert raw[:4] == cosignature_key_id(w.name, bytes(w.signing_key.verify_key))
    assert raw[:4] == w.verifier.key_id
    assert raw[4:12] == (1679315147).to_bytes(8, "big")
    message = b"cosignature/v1\ntime 1679315147\n" + body.encode()
    VerifyKey(w.verifier.public_key).verify(message, raw[12:])  # raises if not
    assert verify_cosignatures(note + line, w.verifier) == [1679315147]


def test_keys_round_trip_and_key_ids_follow_the_spec():
    w = generate_cosigner("witness.example.org/w1")
    pub = w.verifier.public_key
    expected = hashlib.sha256(b"witness.example.org/w1\n\x04" + pub).digest()[:4]
    assert w.verifier.key_id == expected
    vkey = w.verifier.vkey()
    assert vkey.startswith(f"witness.example.org/w1+{expected.hex()}+")
    assert base64.b64decode(vkey.split("+", 2)[2])[0] == 0x04
    assert parse_cosignature_vkey(vkey) == w.verifier
    assert parse_cosigner_skey(w.skey()).verifier == w.verifier


def test_verification_refuses_a_changed_body_a_missing_line_and_a_note_key():
    log = TestLog()
    note = log.checkpoint(3)
    body, _ = split_note(note)
    w = generate_cosigner("witness.example.org/w1")
    line = w.cosign(body, 1700000000)
    with pytest.raises(NoteError, match="invalid cosignature"):
        verify_cosignatures(note.replace("\n3\n", "\n4\n", 1) + line, w.verifier)
    with pytest.raises(NoteError, match="no cosignature"):
        verify_cosignatures(note, w.verifier)
    with pytest.raises(NoteError, match="type 0x04"):
        parse_cosignature_vkey(log.vkey.replace(log.vkey.split("+")[1], w.verifier.key_id.hex()))
    with pytest.raises(NoteError, match="timestamp"):
        w.cosign(body, 0)
