"""Every status of C2SP tlog-witness v1.0.0's add-checkpoint, from a witness process over
real HTTP, in the order a log meets them."""

from __future__ import annotations

import json

import pytest

from ledger.core.merkle import EMPTY_ROOT
from ledger.core.note import b64
from ledger.witness.cosignature import parse_cosignature_vkey, verify_cosignatures
from ledger.witness.protocol import origin_hash
from ledger.witness.state import State
from tests.steps.witness import ROOT, TestLog, add, keygen, request, start_witness, stop

LOG = TestLog()
OTHER = TestLog("example.org/other-log")
IMPOSTOR = TestLog(LOG.origin)  # the same origin and key name, another key


@pytest.fixture(scope="module")
def witness(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("witness")
    key, vkey = keygen(tmp)
    proc, addr = start_witness(tmp, key, [f"{LOG.origin} {LOG.vkey}"])
    yield addr, parse_cosignature_vkey(vkey), tmp / "state.sqlite"
    stop(proc)


def tampered(note: str) -> str:
    """The log's own signature line with one signature byte changed."""
    head, line = note.rsplit("\u2014 ", 1)
    name, sig = line.split(" ")
    raw = bytearray(__import__("base64").b64decode(sig))
    raw[-1] ^= 1
    return f"{head}\u2014 {name} {b64(bytes(raw))}\n"


# (what, request body, status, what the body says): run in this order on one witness.
CASES = [
    ("first checkpoint, old 0", lambda: LOG.body(0, 4), 200, "\u2014 witness.example.org/w1 "),
    ("old is not the latest", lambda: LOG.body(0, 8), 409, "4\n"),
    ("old past the size", lambda: LOG.body(8, 4, proof=[]), 400, "larger than"),
    ("no old line", lambda: LOG.body(0, 4).replace(b"old 0", b"olde 0"), 400, "old <size>"),
    (
        "old with a leading zero",
        lambda: LOG.body(4, 8).replace(b"old 4", b"old 04"),
        400,
        "leading",
    ),
    (
        "no blank line",
        lambda: b"old 4\n" + LOG.checkpoint(8).encode().replace(b"\n\n", b"\n"),
        400,
        "blank",
    ),
    (
        "a proof line not base64",
        lambda: LOG.body(4, 8).replace(b"old 4\n", b"old 4\n*\n"),
        400,
        "base64",
    ),
    ("a proof line not a hash", lambda: LOG.body(4, 8, proof=[b"short"]), 400, "32-byte"),
    ("64 proof lines", lambda: LOG.body(4, 8, proof=[EMPTY_ROOT] * 64), 400, "at most 63"),
    ("not a checkpoint", lambda: b"old 4\n\nhello\n\n\xe2\x80\x94 x AAAAAAAA\n", 400, "malformed"),
    ("unknown origin", lambda: OTHER.body(0, 4), 404, "unknown log origin"),
    ("signed by an unknown key", lambda: IMPOSTOR.body(4, 8), 403, "no signature by a known key"),
    (
        "a trusted key's signature fails",
        lambda: LOG.body(4, 8, note=tampered(LOG.checkpoint(8))),
        403,
        "invalid signature",
    ),
    (
        "a bad consistency proof",
        lambda: LOG.body(4, 8, proof=LOG.proof(4, 7)),
        422,
        "consistency proof",
    ),
    (
        "same size, another root",
        lambda: LOG.body(4, 4, note=LOG.checkpoint(4, root=EMPTY_ROOT)),
        422,
        "fork",
    ),
    (
        "size 0 with a root not the empty tree's",
        lambda: LOG.body(0, 0, note=LOG.checkpoint(0, root=LOG.root(1))),
        422,
        "empty tree",
    ),
    ("a proof from old 0", lambda: LOG.body(0, 8, proof=LOG.proof(4, 8)), 422, "from size 0"),
    (
        "a proof between equal sizes",
        lambda: LOG.body(4, 4, proof=LOG.proof(2, 4)),
        422,
        "equal sizes",
    ),
    ("the same checkpoint again", lambda: LOG.body(4, 4), 200, "\u2014 witness.example.org/w1 "),
    ("a consistent extension", lambda: LOG.body(4, 8), 200, "\u2014 witness.example.org/w1 "),
    ("the previous size now stale", lambda: LOG.body(4, 9), 409, "8\n"),
    ("a body over 16 KiB", lambda: b"old 8\n" + b"A" * 16 * 1024, 413, "larger than 16384"),
]


def test_every_status_in_turn(witness):
    addr, verifier, state = witness
    for what, body, status, says in CASES:
        got, ctype, text, _ = add(addr, body())
        assert (what, got) == (what, status), text
        assert says in text, (what, text)
        if status == 409:
            assert ctype == "text/x.tlog.size", what
        if status == 200:
            # The lines a log appends to its checkpoint: they verify under the witness key.
            note = body().decode().split("\n\n", 1)[1]
            assert text.startswith("\u2014 ") and text.endswith("\n") and text.count("\n") == 1
            assert verify_cosignatures(note + text, verifier)[0] > 0
    # The refused checkpoints are kept as evidence, both checkpoints side by side.
    rows = [
        (
            r["kind"],
            r["cosigned_size"],
            r["offered_old"],
            r["cosigned_checkpoint"],
            r["offered_checkpoint"],
        )
        for r in State(state).conflicts(LOG.origin)
    ]
    fork = rows[1]
    assert fork[3].startswith(LOG.checkpoint(4).split("\n\n")[0])
    assert b64(EMPTY_ROOT) in fork[4]


def test_the_monitoring_endpoint_serves_the_latest_cosigned_checkpoint(witness):
    addr, verifier, _ = witness
    status, _, text, _ = request(addr, "GET", f"/{origin_hash(LOG.origin)}/checkpoint")
    assert status == 200
    assert text.startswith(f"{LOG.origin}\n8\n{b64(LOG.root(8))}\n\n")
    assert verify_cosignatures(text, verifier)
    assert f"\u2014 {LOG.origin} " in text  # with the log's signature the witness checked
    assert request(addr, "GET", f"/{origin_hash(OTHER.origin)}/checkpoint")[0] == 404
    assert request(addr, "GET", "/checkpoint")[0] == 404
    assert request(addr, "POST", "/other", b"x")[0] == 404


def test_a_client_over_its_rate_is_answered_429(tmp_path):
    key, _ = keygen(tmp_path)
    proc, addr = start_witness(tmp_path, key, [f"{LOG.origin} {LOG.vkey}"], rate=3)
    try:
        answers = [add(addr, LOG.body(0, 1)) for _ in range(6)]
    finally:
        stop(proc)
    statuses = [a[0] for a in answers]
    assert statuses[0] == 200 and 429 in statuses
    refused = answers[statuses.index(429)]
    assert refused[3].getheader("Retry-After") == "1"


def test_a_checkpoint_of_another_ecosystem_is_witnessed(tmp_path):
    # A real sum.golang.org checkpoint (tests/vectors/SOURCES.md): the witness reads the
    # Go checksum database's own note and key unchanged.
    vector = json.loads((ROOT / "tests/vectors/public.json").read_text())["signed_notes"][3]
    key, vkey = keygen(tmp_path)
    proc, addr = start_witness(tmp_path, key, [f"go.sum database tree {vector['vkey']}"])
    try:
        status, _, text, _ = add(addr, ("old 0\n\n" + vector["note"]).encode())
        assert status == 200, text
        assert verify_cosignatures(vector["note"] + text, parse_cosignature_vkey(vkey))
        changed = vector["note"].replace("6476701", "6476702")
        assert add(addr, ("old 6476701\n\n" + changed).encode())[0] == 403
    finally:
        stop(proc)
