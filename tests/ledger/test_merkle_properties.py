"""Property tests for the pure primitives: the stored-hash Merkle tree against a naive
RFC 9162 reference, envelopes and leaves, and the keyring's rules.

None of these tests touches the database.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime

import pytest
import rfc8785
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey

from ledger.core import envelope, merkle
from ledger.core.envelope import EnvelopeError
from ledger.core.keyring import Keyring, KeyringError, KeyState, descriptor

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEW = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- a naive RFC 9162 section 2.1 reference, written from the RFC's text ------------------


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _k(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(d: list[bytes]) -> bytes:
    """MTH(D[n]): the Merkle Tree Hash of the leaf inputs d."""
    n = len(d)
    if n == 0:
        return _sha256(b"")
    if n == 1:
        return _sha256(b"\x00" + d[0])
    k = _k(n)
    return _sha256(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:]))


def ref_path(m: int, d: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]): the inclusion proof of the m-th leaf."""
    n = len(d)
    if n == 1:
        return []
    k = _k(n)
    if m < k:
        return [*ref_path(m, d[:k]), ref_mth(d[k:])]
    return [*ref_path(m - k, d[k:]), ref_mth(d[:k])]


def ref_proof(m: int, d: list[bytes]) -> list[bytes]:
    """PROOF(m, D[n]): the consistency proof from the first m leaves to all n."""
    return _ref_subproof(m, d, True)


def _ref_subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [ref_mth(d)]
    k = _k(n)
    if m <= k:
        return [*_ref_subproof(m, d[:k], b), ref_mth(d[k:])]
    return [*_ref_subproof(m - k, d[k:], False), ref_mth(d[:k])]


def test_the_reference_reproduces_the_rfc6962_sample_tree_root():
    # The transparency-dev sample tree (see test_vectors.py): the reference is a reference.
    d = [
        bytes.fromhex(h)
        for h in (
            "",
            "00",
            "10",
            "2021",
            "3031",
            "40414243",
            "5051525354555657",
            "606162636465666768696a6b6c6d6e6f",
        )
    ]
    assert ref_mth(d).hex() == "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
    assert (
        ref_mth(d[:3]).hex() == "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77"
    )


# --- the stored-hash tree under test ----------------------------------------------------------


class Tree:
    """Leaves appended one by one into a stored-hash dict, as the log does."""

    def __init__(self, data: list[bytes]):
        self.data = data
        self.store: dict[int, bytes] = {}
        self.count_after: list[int] = [0]
        for n, item in enumerate(data):
            # As ledger.log does: resume from the right edge, push the leaf, store the hashes.
            frontier = [self.store[i] for i in merkle.root_indexes(n)]
            builder = merkle.TreeBuilder.resume(n, frontier)
            start = merkle.stored_hash_index(0, n)
            for off, h in enumerate(builder.push(merkle.leaf_hash(item))):
                assert start + off not in self.store, "appending never overwrites a stored hash"
                self.store[start + off] = h
            self.count_after.append(len(self.store))

    def read(self, indexes):
        return [self.store[i] for i in indexes]

    def leaf(self, i: int) -> bytes:
        return merkle.leaf_hash(self.data[i])

    def root(self, n: int) -> bytes:
        return merkle.tree_root(n, self.read)


def _leaves(salt: bytes, n: int) -> list[bytes]:
    # Distinct leaf inputs (the salt varies them between examples).
    return [salt + b"/" + str(i).encode() for i in range(n)]


def _flip(h: bytes, bit: int) -> bytes:
    b = bytearray(h)
    b[(bit // 8) % len(b)] ^= 1 << (bit % 8)
    return bytes(b)


def _fails(fn, *args) -> bool:
    try:
        fn(*args)
    except merkle.ProofError:
        return True
    return False


SIZES = st.one_of(st.integers(1, 300), st.sampled_from([511, 512, 513, 1000, 1024, 1025]))
SLACK = 24  # leaves beyond n, so that a "wrong size" has a real root to verify against


def test_stored_hashes_agree_with_the_reference_for_every_small_tree():
    tree = Tree(_leaves(b"small", 40))
    for n in range(41):
        d = tree.data[:n]
        assert tree.root(n) == ref_mth(d)
        assert tree.count_after[n] == merkle.stored_hash_count(n)
        for i in range(n):
            assert merkle.prove_inclusion(i, n, tree.read) == ref_path(i, d)
        for m in range(1, n + 1):
            assert merkle.prove_consistency(m, n, tree.read) == ref_proof(m, d)


@PROPERTY
@given(n=SIZES, salt=st.binary(max_size=6))
def test_stored_hashes_give_the_reference_root_and_hold_every_complete_subtree(n, salt):
    tree = Tree(_leaves(salt, n))
    assert tree.root(n) == ref_mth(tree.data)
    assert len(tree.store) == merkle.stored_hash_count(n)
    assert sorted(tree.store) == list(range(len(tree.store)))
    # Every complete subtree's hash is stored once, at stored_hash_index(level, k).
    level = 0
    while (1 << level) <= n:
        width = 1 << level
        for k in range(n // width):
            got = tree.store[merkle.stored_hash_index(level, k)]
            assert got == ref_mth(tree.data[k * width : (k + 1) * width])
        level += 1
    # The in-memory builder agrees, push by push.
    builder = merkle.TreeBuilder()
    for i in range(n):
        pushed = builder.push(tree.leaf(i))
        start = merkle.stored_hash_index(0, i)
        assert pushed == [tree.store[start + j] for j in range(len(pushed))]
    assert builder.root() == tree.root(n)


@PROPERTY
@given(data=st.data(), n=SIZES, salt=st.binary(max_size=6))
def test_inclusion_proofs_equal_the_reference_and_verify(data, n, salt):
    tree = Tree(_leaves(salt, n + SLACK))
    d = tree.data[:n]
    root = tree.root(n)
    for _ in range(3):
        i = data.draw(st.integers(0, n - 1), label="index")
        proof = merkle.prove_inclusion(i, n, tree.read)
        assert proof == ref_path(i, d)
        merkle.verify_inclusion(i, n, tree.leaf(i), proof, root)
        assert merkle.root_from_inclusion(i, n, tree.leaf(i), proof) == ref_mth(d)


@PROPERTY
@given(data=st.data(), n=SIZES, salt=st.binary(max_size=6))
def test_it_rejects_an_inclusion_proof_with_a_flipped_bit_a_wrong_index_or_a_wrong_size(
    data, n, salt
):
    tree = Tree(_leaves(salt, n + SLACK))
    root = tree.root(n)
    i = data.draw(st.integers(0, n - 1), label="index")
    leaf = tree.leaf(i)
    proof = merkle.prove_inclusion(i, n, tree.read)
    bit = data.draw(st.integers(0, 255), label="bit")

    if proof:
        at = data.draw(st.integers(0, len(proof) - 1), label="element")
        bad = [*proof[:at], _flip(proof[at], bit), *proof[at + 1 :]]
        assert _fails(merkle.verify_inclusion, i, n, leaf, bad, root)
    assert _fails(merkle.verify_inclusion, i, n, _flip(leaf, bit), proof, root)
    assert _fails(merkle.verify_inclusion, i, n, leaf, proof, _flip(root, bit))

    j = data.draw(st.integers(0, n + 3).filter(lambda j: j != i), label="wrong index")
    assert _fails(merkle.verify_inclusion, j, n, leaf, proof, root)

    # A wrong size, checked against the real root of the tree of that size.
    size = data.draw(st.integers(1, n + SLACK).filter(lambda s: s != n), label="wrong size")
    assert _fails(merkle.verify_inclusion, i, size, leaf, proof, tree.root(size))

    # A proof one element too long or too short.
    assert _fails(merkle.verify_inclusion, i, n, leaf, [*proof, root], root)
    if proof:
        assert _fails(merkle.verify_inclusion, i, n, leaf, proof[:-1], root)


@PROPERTY
@given(data=st.data(), n=SIZES, salt=st.binary(max_size=6))
def test_consistency_proofs_equal_the_reference_and_verify(data, n, salt):
    tree = Tree(_leaves(salt, n + SLACK))
    d = tree.data[:n]
    for _ in range(3):
        m = data.draw(st.integers(1, n), label="old size")
        proof = merkle.prove_consistency(m, n, tree.read)
        assert proof == ref_proof(m, d)
        merkle.verify_consistency(m, n, ref_mth(d[:m]), ref_mth(d), proof)


@PROPERTY
@given(data=st.data(), n=SIZES, salt=st.binary(max_size=6))
def test_it_rejects_a_consistency_proof_with_a_flipped_bit_or_wrong_sizes(data, n, salt):
    tree = Tree(_leaves(salt, n + SLACK))
    m = data.draw(st.integers(1, n), label="old size")
    old_root, new_root = tree.root(m), tree.root(n)
    proof = merkle.prove_consistency(m, n, tree.read)
    bit = data.draw(st.integers(0, 255), label="bit")
    verify = merkle.verify_consistency

    if proof:
        at = data.draw(st.integers(0, len(proof) - 1), label="element")
        bad = [*proof[:at], _flip(proof[at], bit), *proof[at + 1 :]]
        assert _fails(verify, m, n, old_root, new_root, bad)
        assert _fails(verify, m, n, old_root, new_root, proof[:-1])
    assert _fails(verify, m, n, _flip(old_root, bit), new_root, proof)
    assert _fails(verify, m, n, old_root, _flip(new_root, bit), proof)
    assert _fails(verify, m, n, old_root, new_root, [*proof, new_root])

    # Wrong sizes, each checked against the real root of the tree of that size.
    m2 = data.draw(st.integers(0, n + 1).filter(lambda s: s != m), label="wrong old size")
    assert _fails(verify, m2, n, tree.root(m2), new_root, proof)
    n2 = data.draw(st.integers(1, n + SLACK).filter(lambda s: s != n), label="wrong new size")
    assert _fails(verify, m, n2, old_root, tree.root(n2), proof)


@pytest.mark.parametrize("n", [1000, 1024, 1025, 2047, 2049])
def test_large_trees_agree_with_the_reference_at_their_edges(n):
    tree = Tree(_leaves(b"large", n))
    d = tree.data
    root = ref_mth(d)
    assert tree.root(n) == root
    for i in sorted({0, 1, 511, 512, 513, n // 2, n - 2, n - 1}):
        proof = merkle.prove_inclusion(i, n, tree.read)
        assert proof == ref_path(i, d)
        merkle.verify_inclusion(i, n, tree.leaf(i), proof, root)
    for m in sorted({1, 2, 3, 511, 512, 513, 1000, n - 1, n}):
        proof = merkle.prove_consistency(m, n, tree.read)
        assert proof == ref_proof(m, d)
        merkle.verify_consistency(m, n, ref_mth(d[:m]), root, proof)


@FEW
@given(n=st.integers(0, 300), extra=st.integers(1, 40))
def test_a_tree_builder_resumed_from_stored_hashes_reaches_the_same_later_roots(n, extra):
    tree = Tree(_leaves(b"resume", n + extra))
    builder = merkle.TreeBuilder.resume(n, tree.read(merkle.root_indexes(n)))
    assert builder.root() == tree.root(n)
    for i in range(n, n + extra):
        builder.push(tree.leaf(i))
    assert builder.size == n + extra
    assert builder.root() == ref_mth(tree.data)


# --- envelopes and leaves ---------------------------------------------------------------------

AUTHOR_KEY = SigningKey(bytes(range(32)))
AUTHOR = envelope.key_fingerprint(bytes(AUTHOR_KEY.verify_key))
OTHER_KEY = SigningKey(bytes(range(1, 33)))
ORIGIN = "ledger.consortium.example"
TIME = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)
INTEGRATED = "2026-01-31T12:00:01.250000Z"

# Characters that stress JCS: escapes, non-ASCII, and the ranges whose UTF-16 order
# differs from code-point order (U+E000..U+FFFF against astral characters).
TRICKY = st.sampled_from(
    [
        "a",
        "B",
        "z",
        "1",
        " ",
        '"',
        "\\",
        "/",
        "\n",
        "\t",
        "\x01",
        "\x1f",
        "\x7f",
        "\u00e9",
        "\u20ac",
        "\u2028",
        "\ue000",
        "\uffff",
        "\U00010000",
        "\U0001f600",
    ]
)
# Any text but U+0000, which envelopes refuse (PostgreSQL cannot store it).
TEXT = st.one_of(
    st.text(TRICKY, max_size=6),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=10),
)
SAFE_INT = st.integers(-envelope.MAX_SAFE_INTEGER, envelope.MAX_SAFE_INTEGER)
JSON = st.recursive(
    st.none() | st.booleans() | SAFE_INT | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=20,
)
PAYLOADS = st.dictionaries(TEXT, JSON, max_size=5)


def _envelope(payload: dict, **kw) -> dict:
    return envelope.new_envelope(
        kind=kw.pop("kind", "agreement.signed"),
        payload=payload,
        author=kw.pop("author", AUTHOR),
        entry_id=kw.pop("entry_id", "entry-1"),
        time=kw.pop("time", TIME),
    )


def _leaf(payload: dict, index: int = 7) -> tuple[envelope.SignedEnvelope, bytes]:
    signed = envelope.sign_envelope(_envelope(payload), AUTHOR_KEY, ORIGIN)
    return signed, envelope.build_leaf(signed.envelope_bytes, index, INTEGRATED, signed.signature)


def _leaf_object(signed: envelope.SignedEnvelope, index: int = 7) -> dict:
    return {
        "entry": signed.envelope,
        "index": index,
        "integrated_time": INTEGRATED,
        "signature": base64.b64encode(signed.signature).decode(),
    }


@PROPERTY
@given(payload=PAYLOADS, index=st.integers(0, envelope.MAX_SAFE_INTEGER))
def test_a_signed_envelope_round_trips_through_its_leaf(payload, index):
    signed, leaf = _leaf(payload, index)
    assert signed.envelope_bytes == rfc8785.dumps(signed.envelope)
    # build_leaf's concatenation is exactly the JCS form of the leaf object.
    assert leaf == rfc8785.dumps(_leaf_object(signed, index))
    parsed = envelope.parse_leaf(leaf)
    assert parsed.envelope == signed.envelope
    assert parsed.envelope_bytes == signed.envelope_bytes
    assert (parsed.index, parsed.integrated_time, parsed.signature) == (
        index,
        INTEGRATED,
        signed.signature,
    )
    assert envelope.verify_leaf_signature(parsed, bytes(AUTHOR_KEY.verify_key), ORIGIN)
    assert not envelope.verify_leaf_signature(parsed, bytes(OTHER_KEY.verify_key), ORIGIN)
    assert envelope.is_canonical(leaf, json.loads(leaf))


@PROPERTY
@given(value=JSON)
def test_is_canonical_agrees_with_rfc8785_for_float_free_values(value):
    jcs = rfc8785.dumps(value)
    assert envelope.is_canonical(jcs, value)
    variants = [
        json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(),
        json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode(),
        json.dumps(value, sort_keys=True, separators=(", ", ": "), ensure_ascii=False).encode(),
        json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode(),
    ]
    for data in variants:
        assert envelope.is_canonical(data, value) == (data == jcs)


def _reordered(value):
    """The same JSON with every object's keys in reverse JCS order."""
    if isinstance(value, dict):
        return {k: _reordered(value[k]) for k in reversed(list(json.loads(rfc8785.dumps(value))))}
    if isinstance(value, list):
        return [_reordered(v) for v in value]
    return value


def _compact(value) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


@PROPERTY
@given(payload=PAYLOADS)
def test_it_rejects_a_leaf_with_extra_spaces(payload):
    signed, leaf = _leaf(payload)
    obj = _leaf_object(signed)
    spaced = [
        json.dumps(obj, separators=(", ", ": "), ensure_ascii=False).encode(),
        leaf[:-1] + b" }",
        b'{"entry": ' + leaf[len(b'{"entry":') :],
        leaf.replace(b',"index":', b', "index":', 1),
    ]
    for data in spaced:
        assert not envelope.is_canonical(data, json.loads(data))
        for check in (True, False):
            with pytest.raises(EnvelopeError):
                envelope.parse_leaf(data, check_payload=check)


@PROPERTY
@given(payload=PAYLOADS)
def test_it_rejects_a_leaf_with_reordered_keys(payload):
    signed, leaf = _leaf(payload)
    obj = _leaf_object(signed)
    # Envelope keys (and payload keys) reversed, leaf keys in place.
    inner = b'{"entry":' + _compact(_reordered(signed.envelope)) + leaf[leaf.rfind(b',"index":') :]
    # Leaf keys reversed (the entry no longer comes first).
    outer = _compact(dict(reversed(list(obj.items()))))
    for data in (inner, outer):
        assert data != leaf
        assert not envelope.is_canonical(data, json.loads(data))
        for check in (True, False):
            with pytest.raises(EnvelopeError, match="canonical"):
                envelope.parse_leaf(data, check_payload=check)


@PROPERTY
@given(payload=PAYLOADS, x=st.floats(allow_nan=True, allow_infinity=True))
def test_it_rejects_a_float_anywhere_in_the_payload(payload, x):
    for bad in ({**payload, "x": x}, {"nested": [payload, {"x": x}]}):
        with pytest.raises(EnvelopeError, match="floating-point"):
            _envelope(bad)
        env = {**_envelope({}), "payload": bad}
        with pytest.raises(EnvelopeError, match="floating-point"):
            envelope.sign_envelope(env, AUTHOR_KEY, ORIGIN)


@PROPERTY
@given(
    n=st.one_of(
        st.integers(min_value=envelope.MAX_SAFE_INTEGER + 1),
        st.integers(max_value=-envelope.MAX_SAFE_INTEGER - 1),
    )
)
def test_it_rejects_an_integer_beyond_two_to_the_53_minus_one(n):
    for bad in ({"n": n}, {"list": [1, {"deep": n}]}):
        with pytest.raises(EnvelopeError, match="2\\^53"):
            _envelope(bad)
        env = {**_envelope({}), "payload": bad}
        with pytest.raises(EnvelopeError, match="2\\^53"):
            envelope.sign_envelope(env, AUTHOR_KEY, ORIGIN)


def test_the_largest_safe_integers_are_accepted():
    m = envelope.MAX_SAFE_INTEGER
    _, leaf = _leaf({"max": m, "min": -m})
    assert envelope.parse_leaf(leaf).envelope["payload"] == {"max": m, "min": -m}


def _hand_leaf(payload_json: bytes) -> bytes:
    """A leaf whose payload is written by hand (sign_envelope would refuse it)."""
    env = _envelope({"x": 0})
    env_bytes = rfc8785.dumps(env).replace(b'"payload":{"x":0}', b'"payload":' + payload_json)
    sig = AUTHOR_KEY.sign(envelope.signing_message(env_bytes, ORIGIN)).signature
    return envelope.build_leaf(env_bytes, 7, INTEGRATED, sig)


@pytest.mark.parametrize(
    "payload_json", [b'{"x":1.5}', b'{"x":1.0}', b'{"x":9007199254740992}', b'{"x":NaN}']
)
def test_parse_leaf_rejects_a_leaf_whose_payload_holds_a_float_or_unsafe_integer(payload_json):
    with pytest.raises(EnvelopeError):
        envelope.parse_leaf(_hand_leaf(payload_json))


@pytest.mark.parametrize(
    "payload_json",
    [b'{"x":1.0}', b'{"x":1e+20}', b'{"x":1e-07}', b'{"x":NaN}', b'{"x":-Infinity}'],
)
def test_it_rejects_a_float_not_in_jcs_form_even_without_the_payload_check(payload_json):
    # Verification skips the payload policy, but the canonical-form check must still hold:
    # JCS writes 1, 100000000000000000000 and 1e-7, and has no NaN or Infinity at all.
    leaf = _hand_leaf(payload_json)
    with pytest.raises(EnvelopeError, match="canonical"):
        envelope.parse_leaf(leaf, check_payload=False)


def test_a_float_already_in_jcs_form_passes_the_canonical_check_without_the_payload_check():
    leaf = _hand_leaf(b'{"x":1.5}')
    assert envelope.parse_leaf(leaf, check_payload=False).envelope["payload"] == {"x": 1.5}


def test_it_refuses_to_sign_an_envelope_for_another_author():
    env = _envelope({})
    with pytest.raises(EnvelopeError, match="author"):
        envelope.sign_envelope(env, OTHER_KEY, ORIGIN)


def test_it_rejects_an_envelope_with_a_missing_or_unknown_field():
    env = _envelope({})
    with pytest.raises(EnvelopeError, match="missing"):
        envelope.check_envelope({k: v for k, v in env.items() if k != "kind"})
    with pytest.raises(EnvelopeError, match="unknown"):
        envelope.check_envelope({**env, "extra": 1})


def test_a_leaf_signature_does_not_verify_after_its_payload_changes():
    _, leaf = _leaf({"amount": "10"})
    tampered = leaf.replace(b'"amount":"10"', b'"amount":"11"')
    parsed = envelope.parse_leaf(tampered)
    assert not envelope.verify_leaf_signature(parsed, bytes(AUTHOR_KEY.verify_key), ORIGIN)


# --- keyring rules ----------------------------------------------------------------------------

ORIGIN = "test.ledger.example"
LOG_KEY = SigningKey(b"\x01" * 32)
MEMBER_KEY = SigningKey(b"\x02" * 32)
SERVICE_KEY = SigningKey(b"\x03" * 32)


def _fp(sk: SigningKey) -> str:
    return envelope.key_fingerprint(bytes(sk.verify_key))


LOG, MEMBER, SERVICE = _fp(LOG_KEY), _fp(MEMBER_KEY), _fp(SERVICE_KEY)


def _desc(
    sk: SigningKey,
    kind: str = "member",
    custody: str = "external",
    name: str = "k",
    owner: str = "owner",
) -> dict:
    return descriptor(
        public_key=bytes(sk.verify_key), kind=kind, owner=owner, custody=custody, name=name
    )


def _genesis_payload(sk: SigningKey = LOG_KEY, **kw) -> dict:
    kw.setdefault("name", ORIGIN)
    kw.setdefault("kind", "log")
    kw.setdefault("custody", "hosted")
    return {"origin": ORIGIN, "key": _desc(sk, **kw)}


def _keyring() -> Keyring:
    kr = Keyring()
    kr.admit(0, "log.genesis", _genesis_payload(), LOG)
    return kr


def _register(kr: Keyring, index: int, sk: SigningKey, author: str = LOG, **kw) -> KeyState:
    return kr.admit(index, "key.registered", {"key": _desc(sk, **kw)}, author)


def test_the_genesis_entry_registers_the_log_key_valid_from_index_zero():
    kr = Keyring()
    state = kr.admit(0, "log.genesis", _genesis_payload(), LOG)
    assert kr.log_key == LOG
    assert (state.kind, state.registered_in, state.valid_from, state.revoked_at) == (
        "log",
        0,
        0,
        None,
    )
    assert kr.public_key_for(LOG, 0) == bytes(LOG_KEY.verify_key)


def test_it_rejects_any_entry_but_genesis_at_index_zero():
    with pytest.raises(KeyringError, match=r"index 0 must be log\.genesis"):
        Keyring().admit(0, "key.registered", {"key": _desc(MEMBER_KEY)}, LOG)


@pytest.mark.parametrize("index", [1, 2, 100])
def test_it_rejects_a_genesis_entry_after_index_zero(index):
    kr = _keyring()
    with pytest.raises(KeyringError, match="only be the entry at index 0"):
        kr.admit(index, "log.genesis", _genesis_payload(), LOG)


def test_it_rejects_a_genesis_entry_not_signed_by_the_key_it_registers():
    with pytest.raises(KeyringError, match="signed by the log key it registers"):
        Keyring().admit(0, "log.genesis", _genesis_payload(), MEMBER)


def test_it_rejects_a_genesis_entry_whose_key_is_not_a_hosted_log_key_named_for_the_origin():
    for kw in ({"kind": "member"}, {"custody": "external"}, {"name": "another.origin"}):
        with pytest.raises(KeyringError):
            Keyring().admit(0, "log.genesis", _genesis_payload(**kw), LOG)


def test_the_log_key_may_register_a_key():
    kr = _keyring()
    state = _register(kr, 1, MEMBER_KEY)
    assert (state.fingerprint, state.registered_in, state.valid_from) == (MEMBER, 1, 2)


def test_it_rejects_a_key_registration_by_a_key_of_another_owner_or_kind():
    kr = _keyring()
    _register(kr, 1, MEMBER_KEY)
    with pytest.raises(KeyringError, match="signed by the log key or by a valid key of the same"):
        _register(kr, 2, SERVICE_KEY, author=MEMBER, owner="someone else")
    with pytest.raises(KeyringError, match="signed by the log key or by a valid key of the same"):
        _register(kr, 2, SERVICE_KEY, author=MEMBER, kind="service")
    assert SERVICE not in kr.keys


def test_an_owner_registers_and_revokes_its_own_keys_of_the_same_kind():
    kr = _keyring()
    _register(kr, 1, MEMBER_KEY)
    second = _register(kr, 2, SERVICE_KEY, author=MEMBER)
    assert (second.owner, second.valid_from) == ("owner", 3)
    revoked = kr.admit(3, "key.revoked", {"fingerprint": MEMBER, "reason": "lost"}, SERVICE)
    assert revoked.revoked_at == 3


def test_a_rotation_is_signed_by_the_old_key_which_is_valid_through_it_and_never_after():
    kr = _keyring()
    _register(kr, 1, MEMBER_KEY)
    new = kr.admit(4, "key.rotated", {"fingerprint": MEMBER, "key": _desc(SERVICE_KEY)}, MEMBER)
    assert (new.fingerprint, new.registered_in, new.valid_from) == (SERVICE, 4, 5)
    assert kr.keys[MEMBER].revoked_at == 4
    with pytest.raises(KeyringError, match="revoked at index 4"):
        kr.public_key_for(MEMBER, 5)
    assert kr.public_key_for(SERVICE, 5) == bytes(SERVICE_KEY.verify_key)


@pytest.mark.parametrize(
    ("payload_key", "author", "message"),
    [
        ({"owner": "someone else"}, "member", "keeps its owner and kind"),
        ({"kind": "facility"}, "member", "keeps its owner and kind"),
        ({}, "log", "signed by the key it replaces"),
    ],
)
def test_it_rejects_a_rotation_that_changes_owner_or_kind_or_is_signed_by_another_key(
    payload_key, author, message
):
    kr = _keyring()
    _register(kr, 1, MEMBER_KEY)
    signer = MEMBER if author == "member" else LOG
    with pytest.raises(KeyringError, match=message):
        kr.admit(
            2,
            "key.rotated",
            {"fingerprint": MEMBER, "key": _desc(SERVICE_KEY, **payload_key)},
            signer,
        )
    assert kr.keys[MEMBER].revoked_at is None and SERVICE not in kr.keys


def test_it_rejects_a_key_registration_signed_by_an_unregistered_key():
    kr = _keyring()
    with pytest.raises(KeyringError, match="not a registered key"):
        _register(kr, 1, SERVICE_KEY, author=SERVICE)


def test_it_rejects_registering_a_key_twice_or_a_second_log_key():
    kr = _keyring()
    _register(kr, 1, MEMBER_KEY)
    with pytest.raises(KeyringError, match="already registered"):
        _register(kr, 2, MEMBER_KEY)
    with pytest.raises(KeyringError, match="one log key"):
        _register(kr, 3, SERVICE_KEY, kind="log", custody="hosted")


def test_a_key_is_invalid_at_its_own_registration_index():
    kr = _keyring()
    _register(kr, 5, MEMBER_KEY)
    with pytest.raises(KeyringError, match="not valid before index 6"):
        kr.public_key_for(MEMBER, 5)
    with pytest.raises(KeyringError):
        kr.admit(5, "agreement.signed", {}, MEMBER)
    assert kr.public_key_for(MEMBER, 6) == bytes(MEMBER_KEY.verify_key)
    assert kr.admit(6, "agreement.signed", {}, MEMBER) is None


def test_a_key_cannot_sign_the_entry_that_registers_it():
    kr = _keyring()
    with pytest.raises(KeyringError, match="not a registered key"):
        _register(kr, 1, MEMBER_KEY, author=MEMBER)


def test_a_revoked_key_may_sign_up_to_its_revocation_index_and_nothing_after():
    kr = _keyring()
    _register(kr, 1, MEMBER_KEY)
    state = kr.admit(9, "key.revoked", {"fingerprint": MEMBER, "reason": "lost"}, LOG)
    assert state.revoked_at == 9
    assert kr.public_key_for(MEMBER, 9) == bytes(MEMBER_KEY.verify_key)
    for index in (10, 11, 1000):
        with pytest.raises(KeyringError, match="revoked at index 9"):
            kr.public_key_for(MEMBER, index)
        with pytest.raises(KeyringError, match="revoked"):
            kr.admit(index, "agreement.signed", {}, MEMBER)


def test_a_key_may_revoke_itself():
    kr = _keyring()
    _register(kr, 1, MEMBER_KEY)
    state = kr.admit(4, "key.revoked", {"fingerprint": MEMBER, "reason": "retired"}, MEMBER)
    assert state.revoked_at == 4
    with pytest.raises(KeyringError):
        kr.public_key_for(MEMBER, 5)


def test_it_rejects_a_revocation_signed_by_a_key_of_another_owner_or_kind():
    kr = _keyring()
    _register(kr, 1, MEMBER_KEY)
    _register(kr, 2, SERVICE_KEY, kind="service", custody="hosted")
    with pytest.raises(KeyringError, match="the key itself or another valid key of the same"):
        kr.admit(4, "key.revoked", {"fingerprint": MEMBER, "reason": "x"}, SERVICE)
    assert kr.keys[MEMBER].revoked_at is None


def test_it_rejects_revoking_the_log_key_or_revoking_a_key_twice():
    kr = _keyring()
    with pytest.raises(KeyringError, match="log key cannot be revoked"):
        kr.admit(1, "key.revoked", {"fingerprint": LOG, "reason": "x"}, LOG)
    _register(kr, 2, MEMBER_KEY)
    kr.admit(3, "key.revoked", {"fingerprint": MEMBER, "reason": "x"}, LOG)
    with pytest.raises(KeyringError, match="already revoked"):
        kr.admit(4, "key.revoked", {"fingerprint": MEMBER, "reason": "x"}, LOG)


def test_it_rejects_a_descriptor_whose_fingerprint_is_not_its_key():
    kr = _keyring()
    desc = {**_desc(MEMBER_KEY), "fingerprint": SERVICE}
    with pytest.raises(KeyringError, match="fingerprint"):
        kr.admit(1, "key.registered", {"key": desc}, LOG)


@FEW
@given(registered=st.integers(1, 50), lifetime=st.integers(1, 50), probe=st.integers(0, 120))
def test_a_key_is_valid_exactly_after_its_registration_and_up_to_its_revocation(
    registered, lifetime, probe
):
    revoked = registered + lifetime
    kr = _keyring()
    _register(kr, registered, MEMBER_KEY)
    kr.admit(revoked, "key.revoked", {"fingerprint": MEMBER, "reason": "x"}, LOG)
    valid = registered < probe <= revoked
    assert kr.keys[MEMBER].valid_at(probe) == valid
    if valid:
        assert kr.public_key_for(MEMBER, probe) == bytes(MEMBER_KEY.verify_key)
    else:
        with pytest.raises(KeyringError):
            kr.public_key_for(MEMBER, probe)
    if probe == 0:
        return  # index 0 is the genesis entry's, whoever signs
    if valid:
        assert kr.admit(probe, "agreement.signed", {}, MEMBER) is None
    else:
        with pytest.raises(KeyringError):
            kr.admit(probe, "agreement.signed", {}, MEMBER)


@pytest.mark.parametrize("payload", [{"note": "a\x00b"}, {"a\x00": 1}, {"list": ["ok", "\x00"]}])
def test_it_refuses_u0000_anywhere_in_a_payload(payload):
    with pytest.raises(EnvelopeError, match="U\\+0000"):
        envelope.check_value(payload)
