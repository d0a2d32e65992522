"""Appending through the Python API: indexes, leaves, keys, idempotency, atomicity."""

from __future__ import annotations

import json

import pytest
from django.db import transaction

from ledger import checkpoints, log, proofs, services, submissions
from ledger.core import merkle
from ledger.core.envelope import parse_leaf, sign_envelope, verify_leaf_signature
from ledger.errors import IdempotencyConflict, LedgerError
from ledger.keys import EntrySigner, log_origin
from ledger.models import Entry, Key, TreeHash
from ledger.services import Draft
from tests.steps.ledger import triggers_disabled


def test_init_writes_the_genesis_entry_signed_by_the_log_key(log_key):
    genesis = Entry.objects.get(index=0)
    assert genesis.kind == "log.genesis"
    assert genesis.author == log_key.fingerprint
    key = Key.objects.get(kind="log")
    assert (key.valid_from, key.revoked_at, key.custody) == (0, None, "hosted")
    leaf = parse_leaf(bytes(genesis.leaf))
    assert verify_leaf_signature(leaf, log_key.public_key, "test.ledger.example")
    # The signature covers the log's origin: under another origin it does not verify.
    assert not verify_leaf_signature(leaf, log_key.public_key, "other.ledger.example")


def test_it_refuses_to_initialise_twice(log_key):
    with pytest.raises(LedgerError, match="already initialised"):
        services.ledger_init()


def test_private_keys_are_stored_sealed_never_in_plaintext(log_key):
    sealed = bytes(Key.objects.get(kind="log").sealed.sealed_seed)
    assert log_key.seed not in sealed
    assert len(sealed) == 32 + 40  # seed + nonce + MAC


def test_entries_get_consecutive_indexes_and_stored_hashes(sample_signer):
    out = [
        services.entry_append(signer=sample_signer, kind="test.sample", payload={"n": i})
        for i in range(10)
    ]
    assert [e.index for e in out] == list(range(2, 12))
    assert TreeHash.objects.count() == merkle.stored_hash_count(12)
    leaves = [merkle.leaf_hash(bytes(e.leaf)) for e in Entry.objects.order_by("index")]
    builder = merkle.TreeBuilder()
    for lh in leaves:
        builder.push(lh)
    assert proofs.root_at(12) == builder.root()


def test_the_leaf_commits_to_the_signed_envelope_index_and_integration_time(sample_signer):
    e = services.entry_append(signer=sample_signer, kind="test.sample", payload={"amount": "12.50"})
    stored = Entry.objects.get(index=e.index)
    doc = json.loads(bytes(stored.leaf))
    assert doc["index"] == e.index
    assert doc["integrated_time"] == e.integrated_time
    assert doc["entry"]["payload"] == {"amount": "12.50"}
    assert bytes(stored.leaf_hash) == merkle.leaf_hash(bytes(stored.leaf))


def test_a_bulk_append_is_one_transaction_in_order(sample_signer):
    drafts = [Draft("test.sample", {"n": i}) for i in range(500)]
    out = services.entries_append(signer=sample_signer, drafts=drafts)
    assert [e.index for e in out] == list(range(2, 502))
    assert [Entry.objects.get(index=i).payload["n"] for i in (2, 250, 501)] == [0, 248, 499]


def test_an_append_rolled_back_with_its_transaction_leaves_no_gap(sample_signer):
    with pytest.raises(RuntimeError), transaction.atomic():
        services.entry_append(signer=sample_signer, kind="test.sample", payload={"n": 1})
        raise RuntimeError("the domain change failed")
    e = services.entry_append(signer=sample_signer, kind="test.sample", payload={"n": 2})
    assert e.index == 2


def test_the_same_id_and_envelope_is_an_idempotent_retry(sample_signer):
    first = services.entry_append(
        signer=sample_signer, kind="test.sample", payload={"n": 1}, entry_id="import-42"
    )
    stored_env = Entry.objects.get(index=first.index).envelope
    again = log.append_signed([sign_envelope(stored_env, sample_signer.signing_key, log_origin())])[
        0
    ]
    assert (again.index, again.created) == (first.index, False)


def test_the_same_id_with_another_envelope_is_a_conflict(sample_signer):
    first = services.entry_append(
        signer=sample_signer, kind="test.sample", payload={"n": 1}, entry_id="import-42"
    )
    stored_env = Entry.objects.get(index=first.index).envelope
    other = sign_envelope(
        {**stored_env, "payload": {"n": 2}}, sample_signer.signing_key, log_origin()
    )
    with pytest.raises(IdempotencyConflict, match="import-42"):
        log.append_signed([other])
    assert Entry.objects.count() == 3


def test_it_rejects_an_unregistered_author_and_writes_nothing(log_key):
    stranger = EntrySigner.generate("stranger")
    with pytest.raises(LedgerError, match="not a registered key"):
        services.entry_append(signer=stranger, kind="test.sample", payload={})
    assert Entry.objects.count() == 1


def test_a_key_cannot_sign_the_entry_that_registers_it_nor_after_revocation(log_key, sample_signer):
    services.key_revoke(signer=log_key, fingerprint=sample_signer.fingerprint, reason="lost laptop")
    assert Key.objects.get(fingerprint=sample_signer.fingerprint).revoked_at == 2
    with pytest.raises(LedgerError, match="revoked at index 2"):
        services.entry_append(signer=sample_signer, kind="test.sample", payload={})
    assert Entry.objects.count() == 3


def test_only_the_log_key_registers_keys(sample_signer):
    other = EntrySigner.generate("other")
    from ledger.core.keyring import descriptor

    desc = descriptor(
        public_key=other.public_key, kind="member", owner="FR", custody="external", name="fr"
    )
    with pytest.raises(LedgerError, match="signed by the log key"):
        services.entry_append(signer=sample_signer, kind="key.registered", payload={"key": desc})


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"amount": 1.5}, "floating-point"),
        ({"big": 2**60}, "2\\^53"),
        ({"bad": object()}, "not JSON"),
    ],
)
def test_it_rejects_payloads_that_do_not_canonicalise_safely(sample_signer, payload, message):
    with pytest.raises(LedgerError, match=message):
        services.entry_append(signer=sample_signer, kind="test.sample", payload=payload)
    assert Entry.objects.count() == 2


@pytest.mark.parametrize("kind", ["Upper.case", "nodot", "a..b", "x" * 70 + ".y"])
def test_it_rejects_malformed_kinds(sample_signer, kind):
    with pytest.raises(LedgerError, match="kind"):
        services.entry_append(signer=sample_signer, kind=kind, payload={})


def test_an_external_signature_is_checked_against_the_registered_key(log_key):
    member = EntrySigner.generate("fr")
    services.key_register(
        signer=log_key, kind="member", owner="FR", name="fr", public_key=member.public_key
    )
    assert Key.objects.get(fingerprint=member.fingerprint).custody == "external"
    env = {
        "author": member.fingerprint,
        "id": "fr-1",
        "kind": "test.sample",
        "payload": {"x": "1"},
        "time": "2026-11-26T12:00:00Z",
    }
    good = sign_envelope(env, member.signing_key, log_origin())
    with pytest.raises(LedgerError, match="does not verify"):
        submissions.signed_envelope_from_client(env, bytes(64))
    checked = submissions.signed_envelope_from_client(env, good.signature)
    e = services.entries_append_signed([checked])[0]
    assert e.index == 2


def test_a_checkpoint_is_published_after_each_commit_without_a_broker(
    sample_signer, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        services.entry_append(signer=sample_signer, kind="test.sample", payload={})
    assert checkpoints.latest_checkpoint().tree_size == 3


def test_publishing_refuses_to_sign_a_tree_inconsistent_with_the_last_checkpoint(sample_signer):
    services.entry_append(signer=sample_signer, kind="test.sample", payload={})
    checkpoints.publish_checkpoint()
    services.entry_append(signer=sample_signer, kind="test.sample", payload={})

    with triggers_disabled() as cur:
        # The hash of leaves 0-3, from which the root at size 4 is read.
        cur.execute(
            "UPDATE ledger_treehash SET hash = %s WHERE idx = %s",
            [bytes(32), merkle.stored_hash_index(2, 0)],
        )
    with pytest.raises(LedgerError, match="not consistent"):
        checkpoints.publish_checkpoint()
    assert checkpoints.latest_checkpoint().tree_size == 3


def test_an_append_refuses_to_build_on_a_frontier_that_differs_from_the_stored_tree(sample_signer):
    with triggers_disabled() as cur:
        # The hash of leaves 0-1 is on the right edge of the tree of size 2.
        cur.execute(
            "UPDATE ledger_treehash SET hash = %s WHERE idx = %s",
            [bytes(32), merkle.stored_hash_index(1, 0)],
        )
    with pytest.raises(LedgerError, match="frontier differs"), transaction.atomic():
        services.entry_append(signer=sample_signer, kind="test.sample", payload={})
    assert Entry.objects.count() == 2


@pytest.mark.parametrize("field", ["kind", "id", "time"])
def test_a_trailing_newline_does_not_sneak_past_field_formats(sample_signer, field):
    from ledger.core.envelope import EnvelopeError, check_envelope, new_envelope

    env = new_envelope(kind="test.sample", payload={}, author=sample_signer.fingerprint)
    with pytest.raises(EnvelopeError):
        check_envelope({**env, field: env[field] + "\n"})


def test_a_key_name_that_signed_notes_cannot_carry_is_refused(log_key):
    with pytest.raises(LedgerError, match="printable"):
        services.key_register(signer=log_key, kind="service", owner="x", name="a\u200bb")
    assert Key.objects.count() == 1


def test_a_retry_made_later_with_the_same_id_returns_the_first_entry(sample_signer):
    from datetime import UTC, datetime, timedelta

    first = services.entry_append(
        signer=sample_signer,
        kind="test.sample",
        payload={"n": 1},
        entry_id="order-7",
        time=datetime.now(UTC) - timedelta(minutes=5),
    )
    again = services.entry_append(
        signer=sample_signer, kind="test.sample", payload={"n": 1}, entry_id="order-7"
    )
    assert (again.index, again.time, again.created) == (first.index, first.time, False)
    assert Entry.objects.count() == 3


def test_a_sealed_key_does_not_unseal_under_another_key_encryption_key(log_key, settings):
    from ledger.keys import HostedKeyError, hosted_signer

    settings.LEDGER_KEK = "11" * 32
    with pytest.raises(HostedKeyError, match="sealed under key-encryption key"):
        hosted_signer(log_key.fingerprint)


def test_a_member_rotates_its_own_key_and_the_old_one_stops_at_the_rotation(log_key):
    """A delegate of France rotates France's hosted key: signed by the current key."""
    from ledger.verify import verify_ledger

    _, fr = services.key_register(signer=log_key, kind="member", owner="FR", name="fr")
    services.entry_append(signer=fr, kind="test.sample", payload={"by": "old"})
    rotation, new = services.key_rotate(signer=fr)
    old_row = Key.objects.get(fingerprint=fr.fingerprint)
    new_row = Key.objects.get(fingerprint=new.fingerprint)
    assert old_row.revoked_at == rotation.index
    assert (new_row.owner, new_row.kind, new_row.valid_from) == ("FR", "member", rotation.index + 1)
    with pytest.raises(LedgerError, match=f"revoked at index {rotation.index}"):
        services.entry_append(signer=fr, kind="test.sample", payload={"by": "old"})
    services.entry_append(signer=new, kind="test.sample", payload={"by": "new"})
    assert verify_ledger(workers=1).ok


def test_a_member_key_registers_another_key_for_its_member_but_not_for_another(log_key):
    _, fr = services.key_register(signer=log_key, kind="member", owner="FR", name="fr")
    entry, second = services.key_register(signer=fr, kind="member", owner="FR", name="fr-2")
    assert Key.objects.get(fingerprint=second.fingerprint).registered_in == entry.index
    before = Entry.objects.count()
    with pytest.raises(LedgerError, match="same owner and kind"):
        services.key_register(signer=fr, kind="member", owner="DE", name="de")
    with pytest.raises(LedgerError, match="same owner and kind"):
        services.key_register(signer=fr, kind="service", owner="FR", name="svc")
    assert Entry.objects.count() == before


def test_a_retry_whose_payload_differs_only_in_json_type_is_a_conflict(sample_signer):
    from datetime import UTC, datetime, timedelta

    services.entry_append(
        signer=sample_signer,
        kind="test.sample",
        payload={"v": 1},
        entry_id="typed",
        time=datetime.now(UTC) - timedelta(minutes=1),
    )
    with pytest.raises(IdempotencyConflict):
        services.entry_append(
            signer=sample_signer, kind="test.sample", payload={"v": True}, entry_id="typed"
        )


def test_a_service_key_cannot_rotate_itself_out_of_the_operators_hands(sample_signer):
    with pytest.raises(LedgerError, match="operator's"):
        services.key_rotate(signer=sample_signer, public_key=EntrySigner.generate("x").public_key)
    assert Key.objects.get(fingerprint=sample_signer.fingerprint).revoked_at is None
