"""A leaf is at most 65,535 bytes, the most a C2SP tlog-tiles entry bundle holds (its
length is a big-endian uint16): an entry whose leaf would be longer is refused when it is
appended, with a 413 naming the size and the limit, and nothing is written. At the
boundary, through the service and through the API."""

from __future__ import annotations

import base64

import pytest
from rest_framework.test import APIClient

from ledger import submissions
from ledger.core import tiles
from ledger.core.envelope import (
    MAX_ENVELOPE_BYTES,
    MAX_LEAF_BYTES,
    canonical,
    leaf_size,
    new_envelope,
    signing_message,
)
from ledger.keys import EntrySigner, log_origin
from ledger.models import Entry
from ledger.proofs import tree_size
from ledger.services import (
    Draft,
    EntryTooLarge,
    entries_append,
    entry_append,
    key_register,
    log_signer,
)


def test_the_limits_are_the_bundles():
    assert MAX_LEAF_BYTES == tiles.MAX_ENTRY == 65535
    # The largest envelope is the one whose leaf fits at index 0 (the leaf adds 171 bytes
    # there: the index, the integration time and the signature around the envelope).
    assert leaf_size(MAX_ENVELOPE_BYTES, 0) == MAX_LEAF_BYTES
    assert leaf_size(MAX_ENVELOPE_BYTES, 10) == MAX_LEAF_BYTES + 1


def _pad_for(leaf_bytes: int, index: int, envelope_of) -> int:
    """How many padding characters make the leaf at ``index`` exactly ``leaf_bytes``."""
    return leaf_bytes - leaf_size(len(canonical(envelope_of(0))), index)


def test_through_the_service_65535_is_appended_and_65536_refused(sample_signer):
    def envelope_of(pad: int) -> dict:
        return new_envelope(
            kind="test.sample",
            payload={"pad": "x" * pad},
            author=sample_signer.fingerprint,
            entry_id="big",
        )

    entries_append(signer=sample_signer, drafts=[Draft("test.sample", {"n": i}) for i in range(8)])
    index = tree_size()
    assert index >= 10  # an index of two digits: the leaf is one byte longer than at 0..9
    pad = _pad_for(65536, index, envelope_of)
    with pytest.raises(EntryTooLarge) as refused:
        entry_append(
            signer=sample_signer, kind="test.sample", payload={"pad": "x" * pad}, entry_id="big"
        )
    assert "65536 bytes" in str(refused.value) and "at most 65535" in str(refused.value)
    assert refused.value.status == 413
    assert tree_size() == index and not Entry.objects.filter(entry_id="big").exists()

    done = entry_append(
        signer=sample_signer, kind="test.sample", payload={"pad": "x" * (pad - 1)}, entry_id="big"
    )
    leaf = bytes(Entry.objects.get(index=done.index).leaf)
    assert done.index == index and len(leaf) == 65535
    assert tiles.read_entry_bundle(tiles.entry_bundle([leaf])) == [leaf]


def test_an_envelope_that_fits_no_leaf_is_refused_before_signing(sample_signer):
    before = tree_size()
    with pytest.raises(EntryTooLarge, match=f"at most {MAX_ENVELOPE_BYTES} bytes"):
        entries_append(
            signer=sample_signer,
            drafts=[Draft("test.sample", {"n": 1}), Draft("test.sample", {"pad": "x" * 70000})],
        )
    assert tree_size() == before  # the first entry of the batch was not written either


@pytest.fixture
def external(log_key, monkeypatch):
    """An external service key, and a handler that lets it submit ``test.sample``."""
    key = EntrySigner.generate("outside")
    key_register(
        signer=log_signer(),
        kind="service",
        owner="outside",
        name="outside",
        public_key=key.public_key,
    )
    monkeypatch.setitem(submissions._handlers, "test.sample", lambda signed, key, user: None)
    for i in range(9):  # the next index has two digits
        entry_append(signer=log_signer(), kind="test.sample", payload={"n": i})
    return key


@pytest.fixture
def api(partner):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {partner[2]}")
    return client


def _submit(api, key: EntrySigner, pad: int, entry_id: str):
    env = new_envelope(
        kind="test.sample", payload={"pad": "x" * pad}, author=key.fingerprint, entry_id=entry_id
    )
    # Signed as a client would, without the server's size check.
    signature = key.signing_key.sign(signing_message(canonical(env), log_origin())).signature
    body = {"envelope": env, "signature": base64.b64encode(signature).decode()}
    return api.post("/api/v1/ledger/entries", body, format="json")


def test_through_the_api_65535_is_appended_and_65536_refused(api, external):
    index = tree_size()
    assert index >= 10

    def envelope_of(pad: int) -> dict:
        return new_envelope(
            kind="test.sample",
            payload={"pad": "x" * pad},
            author=external.fingerprint,
            entry_id="big",
        )

    pad = _pad_for(65536, index, envelope_of)
    r = _submit(api, external, pad, "big")
    assert r.status_code == 413 and r["Content-Type"] == "application/problem+json"
    detail = r.json()["detail"]
    assert "65536 bytes" in detail and "at most 65535 bytes" in detail
    assert tree_size() == index and not Entry.objects.filter(entry_id="big").exists()

    r = _submit(api, external, pad - 1, "big")
    assert r.status_code == 201, r.content
    assert len(base64.b64decode(r.json()["leaf"])) == 65535

    # An envelope no leaf could hold is refused before its signature is even checked.
    r = _submit(api, external, MAX_ENVELOPE_BYTES, "bigger")
    assert r.status_code == 413 and f"at most {MAX_ENVELOPE_BYTES} bytes" in r.json()["detail"]
    assert not Entry.objects.filter(entry_id="bigger").exists()
