"""The pure primitives in ``ledger/core`` against public test vectors.

The vectors (``tests/vectors/public.json``; ``tests/vectors/SOURCES.md`` names each source) come from
transparency-dev/merkle (RFC 6962/9162 sample tree, inclusion and consistency
proofs), golang.org/x/mod sumdb/note and transparency-dev/formats (C2SP signed notes
and checkpoints), RFC 8032 (Ed25519) and cyberphone's RFC 8785 (JCS) test data.
None of these tests touches the database.
"""

from __future__ import annotations

import json
import struct

import pytest
from nacl.signing import SigningKey, VerifyKey

from ledger.core import envelope, merkle, note
from tests.steps.ledger import VECTORS

SAMPLE = VECTORS["rfc6962_sample_tree"]
LEAF_INPUTS = [bytes.fromhex(h) for h in SAMPLE["leaf_inputs_hex"]]
LEAF_HASHES = [bytes.fromhex(h) for h in SAMPLE["leaf_hashes_hex"]]
LEVEL1 = [bytes.fromhex(h) for h in SAMPLE["level1_hex"]]
LEVEL2 = [bytes.fromhex(h) for h in SAMPLE["level2_hex"]]
ROOTS = [bytes.fromhex(h) for h in SAMPLE["roots_by_size_hex"]]
N = len(LEAF_INPUTS)

INCLUSION = VECTORS["transparency_dev_merkle_inclusion"]
CONSISTENCY = VECTORS["transparency_dev_merkle_consistency"]
NOTES = VECTORS["signed_notes"]
ED25519 = VECTORS["rfc8032_ed25519"]
JCS = VECTORS["rfc8785_jcs"]


def _case_id(case: dict) -> str:
    return f"{case['desc']} ({case['file']})"


def _proof(case: dict) -> list[bytes]:
    # A null proof is an empty one; an empty-string element stays b"" (and must be refused).
    return [bytes.fromhex(h) for h in case.get("proof_hex") or []]


def _happy(cases: list[dict]) -> list[dict]:
    return [c for c in cases if c["desc"] == "happy path"]


def _sample_store() -> dict[int, bytes]:
    """The stored hashes of the sample tree, appended leaf by leaf as the log does."""
    store: dict[int, bytes] = {}
    for n, data in enumerate(LEAF_INPUTS):
        builder = merkle.TreeBuilder.resume(n, [store[i] for i in merkle.root_indexes(n)])
        start = merkle.stored_hash_index(0, n)
        for offset, h in enumerate(builder.push(merkle.leaf_hash(data))):
            assert start + offset not in store, "a stored hash is never overwritten"
            store[start + offset] = h
        assert len(store) == merkle.stored_hash_count(n + 1)
    return store


def _reader(store: dict[int, bytes]):
    return lambda indexes: [store[i] for i in indexes]


# --- RFC 6962 sample tree -----------------------------------------------------------------


def test_the_sample_tree_has_eight_leaves_and_nine_roots():
    assert N == 8
    assert len(LEAF_HASHES) == N
    assert len(ROOTS) == N + 1
    assert (len(LEVEL1), len(LEVEL2)) == (4, 2)


@pytest.mark.parametrize("i", range(N))
def test_leaf_hash_matches_the_sample_tree_leaf_hashes(i):
    assert merkle.leaf_hash(LEAF_INPUTS[i]) == LEAF_HASHES[i]


def test_node_hash_gives_the_sample_tree_level_one_and_level_two_hashes():
    assert [
        merkle.node_hash(LEAF_HASHES[2 * j], LEAF_HASHES[2 * j + 1]) for j in range(4)
    ] == LEVEL1
    assert [merkle.node_hash(LEVEL1[2 * j], LEVEL1[2 * j + 1]) for j in range(2)] == LEVEL2
    assert merkle.node_hash(LEVEL2[0], LEVEL2[1]) == ROOTS[8]


def test_the_empty_root_is_the_hash_of_nothing():
    assert ROOTS[0] == merkle.EMPTY_ROOT
    assert merkle.TreeBuilder().root() == ROOTS[0]


@pytest.mark.parametrize("n", range(N + 1))
def test_tree_builder_gives_the_root_of_the_first_n_leaves(n):
    builder = merkle.TreeBuilder()
    for data in LEAF_INPUTS[:n]:
        builder.push(merkle.leaf_hash(data))
    assert builder.size == n
    assert builder.root() == ROOTS[n]


def test_tree_builder_pushes_return_what_appending_stores():
    store = _sample_store()
    builder = merkle.TreeBuilder()
    for n, h in enumerate(LEAF_HASHES):
        start = merkle.stored_hash_index(0, n)
        pushed = builder.push(h)
        assert pushed == [store[start + k] for k in range(len(pushed))]


@pytest.mark.parametrize("n", range(N + 1))
def test_a_resumed_tree_builder_continues_to_the_same_roots(n):
    store = _sample_store()
    frontier = [store[i] for i in merkle.root_indexes(n)]
    builder = merkle.TreeBuilder.resume(n, frontier)
    assert builder.root() == ROOTS[n]
    for k in range(n, N):
        builder.push(LEAF_HASHES[k])
        assert builder.root() == ROOTS[k + 1]


def test_appending_stores_the_leaf_and_level_hashes_at_their_stored_indexes():
    store = _sample_store()
    assert len(store) == merkle.stored_hash_count(N)
    assert sorted(store) == list(range(len(store)))
    assert [store[merkle.stored_hash_index(0, j)] for j in range(8)] == LEAF_HASHES
    assert [store[merkle.stored_hash_index(1, j)] for j in range(4)] == LEVEL1
    assert [store[merkle.stored_hash_index(2, j)] for j in range(2)] == LEVEL2
    assert store[merkle.stored_hash_index(3, 0)] == ROOTS[8]


@pytest.mark.parametrize("n", range(N + 1))
def test_tree_root_from_stored_hashes_is_the_sample_root_for_every_size(n):
    assert merkle.tree_root(n, _reader(_sample_store())) == ROOTS[n]


@pytest.mark.parametrize("case", _happy(INCLUSION), ids=_case_id)
def test_inclusion_proofs_from_stored_hashes_equal_the_happy_path_vectors(case):
    root = bytes.fromhex(case["root_hex"])
    assert ROOTS[case["treeSize"]] == root, "the happy path is the sample tree"
    proof = merkle.prove_inclusion(case["leafIdx"], case["treeSize"], _reader(_sample_store()))
    assert proof == _proof(case)


@pytest.mark.parametrize("case", _happy(CONSISTENCY), ids=_case_id)
def test_consistency_proofs_from_stored_hashes_equal_the_happy_path_vectors(case):
    assert ROOTS[case["size1"]] == bytes.fromhex(case["root1_hex"])
    assert ROOTS[case["size2"]] == bytes.fromhex(case["root2_hex"])
    proof = merkle.prove_consistency(case["size1"], case["size2"], _reader(_sample_store()))
    assert proof == _proof(case)


def test_every_inclusion_proof_from_the_sample_store_verifies():
    reader = _reader(_sample_store())
    for size in range(1, N + 1):
        for index in range(size):
            proof = merkle.prove_inclusion(index, size, reader)
            merkle.verify_inclusion(index, size, LEAF_HASHES[index], proof, ROOTS[size])


def test_every_consistency_proof_from_the_sample_store_verifies():
    reader = _reader(_sample_store())
    for size2 in range(1, N + 1):
        for size1 in range(1, size2 + 1):
            proof = merkle.prove_consistency(size1, size2, reader)
            merkle.verify_consistency(size1, size2, ROOTS[size1], ROOTS[size2], proof)


def test_it_refuses_to_prove_inclusion_of_a_leaf_beyond_the_tree():
    reader = _reader(_sample_store())
    for index, size in [(0, 0), (3, 3), (8, 8), (-1, 4)]:
        with pytest.raises(merkle.ProofError):
            merkle.prove_inclusion(index, size, reader)


def test_it_refuses_to_prove_consistency_from_the_empty_tree_or_backwards():
    reader = _reader(_sample_store())
    for size1, size2 in [(0, 0), (0, 5), (5, 4)]:
        with pytest.raises(merkle.ProofError):
            merkle.prove_consistency(size1, size2, reader)


# --- transparency-dev/merkle proof vectors --------------------------------------------------


def test_the_vectors_hold_both_passing_and_failing_proofs():
    assert len(INCLUSION) == 98 and len(CONSISTENCY) == 98
    for cases in (INCLUSION, CONSISTENCY):
        assert any(not c["wantErr"] for c in cases)
        assert any(c["wantErr"] for c in cases)


@pytest.mark.parametrize("case", INCLUSION, ids=_case_id)
def test_verify_inclusion_agrees_with_the_transparency_dev_vector(case):
    args = (
        case["leafIdx"],
        case["treeSize"],
        bytes.fromhex(case["leafHash_hex"]),
        _proof(case),
        bytes.fromhex(case["root_hex"]),
    )
    if case["wantErr"]:
        with pytest.raises(merkle.ProofError):
            merkle.verify_inclusion(*args)
    else:
        merkle.verify_inclusion(*args)
        assert merkle.root_from_inclusion(*args[:4]) == args[4]


@pytest.mark.parametrize("case", CONSISTENCY, ids=_case_id)
def test_verify_consistency_agrees_with_the_transparency_dev_vector(case):
    args = (
        case["size1"],
        case["size2"],
        bytes.fromhex(case["root1_hex"]),
        bytes.fromhex(case["root2_hex"]),
        _proof(case),
    )
    if case["wantErr"]:
        with pytest.raises(merkle.ProofError):
            merkle.verify_consistency(*args)
    else:
        merkle.verify_consistency(*args)


# --- C2SP signed notes ----------------------------------------------------------------------


def _find(pred) -> dict:
    (found,) = [n for n in NOTES if pred(n)]
    return found


PETER = _find(lambda n: n.get("skey", "").startswith("PRIVATE+KEY+PeterNeumann+"))
ENOCH = _find(lambda n: n.get("vkey", "").startswith("EnochRoot+"))
SUMDB = _find(lambda n: n.get("vkey", "").startswith("sum.golang.org+"))
MULTI = _find(lambda n: "vkeys" in n)
PAIRS = _find(lambda n: "pairs" in n)["pairs"]


def _text(entry: dict) -> str:
    return PETER["text"] if entry["text"] == "(same text)" else entry["text"]


def _single_notes() -> list[tuple[str, str]]:
    """(verifier key, signed note) for every vector signed by one key."""
    out = []
    for entry in NOTES:
        if "vkey" not in entry:
            continue
        if "note" in entry:
            out.append((entry["vkey"], entry["note"]))
        elif "sig_line" in entry:
            out.append((entry["vkey"], _text(entry) + "\n" + entry["sig_line"]))
    return out


SINGLE_NOTES = _single_notes()
ALL_VKEYS = sorted(
    {v for v, _ in SINGLE_NOTES} | set(MULTI["vkeys"]) | {p[1] for p in PAIRS} | {PETER["vkey"]}
)
ALL_SKEYS = [(PETER["skey"], PETER["vkey"]), *[tuple(p) for p in PAIRS]]


def test_the_signed_note_vectors_are_all_present():
    assert len(SINGLE_NOTES) == 4
    assert len(MULTI["vkeys"]) == len(MULTI["sig_lines"]) == 3
    assert len(ALL_SKEYS) == 3


@pytest.mark.parametrize("vkey", ALL_VKEYS)
def test_every_verifier_key_parses(vkey):
    v = note.parse_verifier_key(vkey)
    assert vkey.startswith(v.name + "+" + v.key_id.hex() + "+")
    assert note.verifier_key(v.name, v.public_key) == vkey


def _key_id(key: str) -> str:
    return key.split("+")[2 if key.startswith("PRIVATE+KEY+") else 0]


@pytest.mark.parametrize(("skey", "vkey"), ALL_SKEYS, ids=_key_id)
def test_every_signer_key_parses_and_gives_its_paired_verifier_key(skey, vkey):
    signer = note.parse_signer_key(skey)
    assert signer.verifier_key() == vkey
    v = note.parse_verifier_key(vkey)
    assert (signer.name, signer.key_id, signer.public_key) == (v.name, v.key_id, v.public_key)


def test_signing_the_text_with_the_peter_neumann_key_gives_exactly_the_go_signature_line():
    signer = note.parse_signer_key(PETER["skey"])
    assert note.signature_line(signer, PETER["text"]) == PETER["sig_line"]
    assert note.sign_note(PETER["text"], signer) == PETER["text"] + "\n" + PETER["sig_line"]


@pytest.mark.parametrize(("vkey", "signed"), SINGLE_NOTES, ids=lambda s: s.split("+")[0][:20])
def test_open_note_verifies_every_vector_note_under_its_verifier_key(vkey, signed):
    v = note.parse_verifier_key(vkey)
    opened = note.open_note(signed, [v])
    assert signed.startswith(opened.text + "\n")
    assert [(s.name, s.key_id) for s in opened.verified] == [(v.name, v.key_id)]
    assert opened.unverified == ()


def test_a_note_signed_by_two_keys_verifies_with_either_and_reports_the_other_unverified():
    signed = PETER["text"] + "\n" + PETER["sig_line"] + ENOCH["sig_line"]
    peter = note.parse_verifier_key(PETER["vkey"])
    enoch = note.parse_verifier_key(ENOCH["vkey"])
    opened = note.open_note(signed, [peter])
    assert [s.name for s in opened.verified] == ["PeterNeumann"]
    assert [s.name for s in opened.unverified] == ["EnochRoot"]
    both = note.open_note(signed, [peter, enoch])
    assert [s.name for s in both.verified] == ["PeterNeumann", "EnochRoot"]


def _multi_note() -> str:
    body, _ = note.split_note(SUMDB["note"])
    return body + "\n" + "".join(line + "\n" for line in MULTI["sig_lines"])


@pytest.mark.parametrize("vkey", MULTI["vkeys"], ids=lambda s: s.split("+")[0])
def test_the_multi_signer_note_verifies_with_each_key_and_reports_the_others_unverified(vkey):
    v = note.parse_verifier_key(vkey)
    opened = note.open_note(_multi_note(), [v])
    assert [s.name for s in opened.verified] == [v.name]
    others = [note.parse_verifier_key(k).name for k in MULTI["vkeys"] if k != vkey]
    assert sorted(s.name for s in opened.unverified) == sorted(others)


def test_the_multi_signer_note_verifies_with_all_keys_at_once():
    verifiers = [note.parse_verifier_key(k) for k in MULTI["vkeys"]]
    opened = note.open_note(_multi_note(), verifiers)
    assert len(opened.verified) == 3 and opened.unverified == ()


@pytest.mark.parametrize(("vkey", "signed"), SINGLE_NOTES, ids=lambda s: s.split("+")[0][:20])
def test_it_rejects_a_note_whose_text_was_changed_by_one_character(vkey, signed):
    v = note.parse_verifier_key(vkey)
    text, _ = note.split_note(signed)
    # Change one character of the text, in the first and in the last line, keeping the
    # signature lines as they are.
    for i in (0, len(text) - 2):
        replacement = "X" if text[i] != "X" else "Y"
        tampered = signed[:i] + replacement + signed[i + 1 :]
        assert tampered != signed and tampered.endswith(signed[len(text) :])
        with pytest.raises(note.NoteError, match="invalid signature"):
            note.open_note(tampered, [v])


def test_it_rejects_a_note_when_the_only_key_is_another_key_with_the_same_name():
    signed = PETER["text"] + "\n" + PETER["sig_line"]
    impostor = note.Signer("PeterNeumann", SigningKey(b"\x07" * 32))
    other = note.parse_verifier_key(impostor.verifier_key())
    assert (
        other.name == "PeterNeumann"
        and other.public_key != note.parse_verifier_key(PETER["vkey"]).public_key
    )
    with pytest.raises(note.NoteError):
        note.open_note(signed, [other])


def test_it_rejects_a_signature_whose_key_id_matches_but_whose_key_does_not():
    # A verifier claiming the real name and key id but holding a different public key:
    # the signature is from a "known" key and does not verify, which is an error.
    real = note.parse_verifier_key(PETER["vkey"])
    forged = note.Verifier(real.name, real.key_id, bytes(SigningKey(b"\x07" * 32).verify_key))
    with pytest.raises(note.NoteError, match="invalid signature"):
        note.open_note(PETER["text"] + "\n" + PETER["sig_line"], [forged])


def test_the_sum_golang_org_note_is_a_checkpoint_of_size_6476701():
    v = note.parse_verifier_key(SUMDB["vkey"])
    opened = note.open_note(SUMDB["note"], [v])
    cp = note.parse_checkpoint(opened.text)
    assert cp.origin == "go.sum database tree"
    assert cp.size == 6476701
    assert len(cp.root) == 32
    assert cp.extensions == ()
    assert cp.body() == opened.text
    assert note.open_checkpoint(SUMDB["note"], v) == cp
    assert note.open_checkpoint(SUMDB["note"], v, origin="go.sum database tree") == cp


def test_it_rejects_the_sum_golang_org_checkpoint_for_another_origin():
    v = note.parse_verifier_key(SUMDB["vkey"])
    with pytest.raises(note.NoteError):
        note.open_checkpoint(SUMDB["note"], v, origin="sum.golang.org")


def test_it_rejects_the_sum_golang_org_checkpoint_with_a_changed_size():
    v = note.parse_verifier_key(SUMDB["vkey"])
    tampered = SUMDB["note"].replace("\n6476701\n", "\n6476702\n", 1)
    assert tampered != SUMDB["note"]
    with pytest.raises(note.NoteError):
        note.open_checkpoint(tampered, v)


# --- RFC 8032 Ed25519 -------------------------------------------------------------------------


@pytest.mark.parametrize("case", ED25519, ids=lambda c: c["test"])
def test_pynacl_signs_the_rfc8032_vectors_exactly(case):
    sk = SigningKey(bytes.fromhex(case["sk"]))
    msg = bytes.fromhex(case["msg"])
    assert sk.sign(msg).signature == bytes.fromhex(case["sig"])
    assert bytes(sk.verify_key) == bytes.fromhex(case["pk"])
    assert VerifyKey(bytes.fromhex(case["pk"])).verify(msg, bytes.fromhex(case["sig"])) == msg


# --- RFC 8785 JCS -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(JCS["cyberphone_testdata"]))
def test_canonical_matches_the_cyberphone_jcs_test_data(name):
    case = JCS["cyberphone_testdata"][name]
    assert envelope.canonical(json.loads(case["input"])) == case["output"].encode("utf-8")


@pytest.mark.parametrize(("bits", "expected"), JCS["appendix_b_numbers"])
def test_canonical_writes_the_rfc8785_appendix_b_numbers(bits, expected):
    (x,) = struct.unpack(">d", bytes.fromhex(bits))
    assert envelope.canonical(x) == expected.encode("ascii")


@pytest.mark.parametrize("entry", JCS["must_error"])
def test_canonical_rejects_numbers_json_cannot_hold(entry):
    bits = entry.split()[0]
    (x,) = struct.unpack(">d", bytes.fromhex(bits))
    with pytest.raises(envelope.EnvelopeError):
        envelope.canonical(x)
    with pytest.raises(envelope.EnvelopeError):
        envelope.canonical({"n": [x]})
