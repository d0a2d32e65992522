"""`ledger verify` finds any change to stored history and names the first bad index."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from ledger import checkpoints, services
from ledger.core import merkle
from ledger.keys import EntrySigner, log_origin
from ledger.models import Entry
from ledger.services import Draft
from ledger.verify import verify_ledger
from tests.steps.ledger import triggers_disabled


@pytest.fixture
def ledger_with_history(sample_signer):
    services.entries_append(
        signer=sample_signer,
        drafts=[Draft("test.sample", {"n": i, "note": "ok"}) for i in range(40)],
    )
    checkpoints.publish_checkpoint()
    services.entries_append(
        signer=sample_signer, drafts=[Draft("test.sample", {"n": i}) for i in range(40, 60)]
    )
    checkpoints.publish_checkpoint()
    return sample_signer


def _set_leaf(index: int, leaf: bytes, *, fix_hash: bool) -> None:
    with triggers_disabled() as cur:
        if fix_hash:
            cur.execute(
                "UPDATE ledger_entry SET leaf = %s, leaf_hash = %s WHERE " + '"index" = %s',
                [leaf, merkle.leaf_hash(leaf), index],
            )
        else:
            cur.execute("UPDATE ledger_entry SET leaf = %s WHERE " + '"index" = %s', [leaf, index])


def _reasons(report, index: int) -> str:
    return " | ".join(reason for i, reason in report.failures if i == index)


def _verify_fails(capsys) -> str:
    with pytest.raises(CommandError) as caught:
        call_command("ledger", "verify", "--workers", "1", "--no-progress")
    assert caught.value.returncode == 1
    return capsys.readouterr().err


def test_an_untouched_ledger_verifies(ledger_with_history, capsys):
    call_command("ledger", "verify", "--workers", "2", "--no-progress")
    assert "OK: 62 entries and 2 checkpoints verify." in capsys.readouterr().out


def test_a_byte_changed_in_a_stored_entry_is_found_and_named(ledger_with_history, capsys):
    leaf = bytes(Entry.objects.get(index=17).leaf)
    _set_leaf(17, leaf.replace(b'"note":"ok"', b'"note":"OK"'), fix_hash=False)
    err = _verify_fails(capsys)
    assert "FAIL at index 17: stored leaf hash is not the hash of the leaf bytes" in err


def test_a_rewritten_entry_with_a_matching_hash_fails_its_signature_and_the_tree(
    ledger_with_history, capsys
):
    leaf = bytes(Entry.objects.get(index=17).leaf)
    _set_leaf(17, leaf.replace(b'"note":"ok"', b'"note":"OK"'), fix_hash=True)
    err = _verify_fails(capsys)
    assert "FAIL at index 17:" in err
    assert "signature does not verify" in err
    assert "stored tree hash" in err


def test_an_entry_re_signed_by_an_unregistered_key_is_found(ledger_with_history, capsys):
    intruder = EntrySigner.generate("intruder")
    env = Entry.objects.get(index=30).envelope
    from ledger.core.envelope import build_leaf, sign_envelope

    forged = sign_envelope(
        {**env, "author": intruder.fingerprint}, intruder.signing_key, log_origin()
    )
    doc = Entry.objects.get(index=30).document
    leaf = build_leaf(forged.envelope_bytes, 30, doc["integrated_time"], forged.signature)
    with triggers_disabled() as cur:
        cur.execute(
            "UPDATE ledger_entry SET leaf = %s, leaf_hash = %s, author = %s WHERE "
            + '"index" = %s',
            [leaf, merkle.leaf_hash(leaf), intruder.fingerprint, 30],
        )
    err = _verify_fails(capsys)
    assert "FAIL at index 30: author" in err and "not a registered key" in err


def test_a_missing_entry_is_a_gap(ledger_with_history, capsys):
    with triggers_disabled() as cur:
        cur.execute('DELETE FROM ledger_entry WHERE "index" = 25')
    err = _verify_fails(capsys)
    assert "FAIL at index 25: entry missing" in err


def test_a_checkpoint_signed_by_another_key_is_found(ledger_with_history, capsys):
    from nacl.signing import SigningKey

    from ledger.core.note import Checkpoint as Body
    from ledger.core.note import Signer, sign_note

    cp = checkpoints.latest_checkpoint()
    forged = sign_note(
        Body("test.ledger.example", cp.tree_size, bytes(cp.root_hash)).body(),
        Signer("test.ledger.example", SigningKey.generate()),
    )
    with triggers_disabled() as cur:
        cur.execute(
            "UPDATE ledger_checkpoint SET note = %s WHERE tree_size = %s", [forged, cp.tree_size]
        )
    err = _verify_fails(capsys)
    assert f"checkpoint at size {cp.tree_size}: no signature by a known key" in err


def test_a_stored_hash_changed_under_the_tree_is_found(ledger_with_history):
    with triggers_disabled() as cur:
        cur.execute(
            "UPDATE ledger_treehash SET hash = %s WHERE idx = %s",
            [bytes(32), merkle.stored_hash_index(2, 3)],
        )
    report = verify_ledger(workers=1)
    assert not report.ok
    index, reason = report.first_failure()
    assert "stored tree hash" in reason
    assert index == 15  # the leaf whose append stored that level-2 hash (leaves 12-15)


def test_a_tampered_key_registry_row_is_found(ledger_with_history):
    with triggers_disabled() as cur:
        cur.execute(
            "UPDATE ledger_key SET valid_from = 0, owner = 'someone else' WHERE fingerprint = %s",
            [ledger_with_history.fingerprint],
        )
    report = verify_ledger(workers=1)
    assert any("differs from its entries" in p for p in report.problems)


def test_a_log_head_out_of_step_with_the_entries_is_found_and_stops_appends(ledger_with_history):
    from ledger.errors import LedgerError
    from ledger.models import LogHead

    LogHead.objects.filter(id=1).update(size=70)
    assert any("log head" in p for p in verify_ledger(workers=1).problems)
    with pytest.raises(LedgerError, match="log head says size 70"):
        services.entry_append(signer=ledger_with_history, kind="test.sample", payload={})


def test_a_forged_checkpoint_beyond_the_tree_is_found_and_blocks_publication(ledger_with_history):
    from nacl.signing import SigningKey

    from ledger.core.note import Checkpoint as Body
    from ledger.core.note import Signer, sign_note
    from ledger.errors import LedgerError
    from ledger.models import Checkpoint

    note = sign_note(
        Body("test.ledger.example", 10**6, bytes(32)).body(),
        Signer("test.ledger.example", SigningKey.generate()),
    )
    Checkpoint.objects.create(
        tree_size=10**6, root_hash=bytes(32), note=note, published_at=timezone.now()
    )
    report = verify_ledger(workers=1)
    assert any(
        "checkpoint at size 1000000: no signature by a known key" in p for p in report.problems
    )
    assert any("checkpoint at size 1000000 is beyond the tree" in p for p in report.problems)
    assert checkpoints.latest_checkpoint().tree_size == 62  # the API never serves it
    with pytest.raises(LedgerError, match="not the log's"):
        checkpoints.publish_checkpoint()


def test_stored_columns_that_differ_from_the_leaf_are_found(ledger_with_history):
    with triggers_disabled() as cur:
        cur.execute("UPDATE ledger_entry SET entry_id = 'renamed' WHERE \"index\" = 12")
        cur.execute("UPDATE ledger_entry SET kind = 'test.other' WHERE \"index\" = 13")
    report = verify_ledger(workers=1)
    assert "differs from the leaf" in _reasons(report, 12)
    assert "differs from the leaf" in _reasons(report, 13)


def test_a_leaf_that_repeats_an_envelope_member_is_found_by_the_default_check(
    ledger_with_history, log_key
):
    """JSON readers take a repeated member's last value: a leaf signed by one key could
    read as authored by another. The fast check must not let that through."""
    from ledger.core.envelope import build_leaf, entry_context

    signer = ledger_with_history
    doc = Entry.objects.get(index=20).document
    env = doc["entry"]
    envelope = (
        f'{{"author":"{signer.fingerprint}","id":"{env["id"]}","kind":"test.sample",'
        f'"payload":{{"x":1}},"author":"{log_key.fingerprint}","kind":"key.revoked",'
        f'"payload":{{"fingerprint":"{signer.fingerprint}","reason":"x"}},"time":"{env["time"]}"}}'
    ).encode()
    sig = signer.signing_key.sign(entry_context(log_origin()) + envelope).signature
    leaf = build_leaf(envelope, 20, doc["integrated_time"], sig)
    _set_leaf(20, leaf, fix_hash=True)
    assert "not one object filling its place" in _reasons(verify_ledger(workers=1), 20)
    assert "not in RFC 8785 canonical form" in _reasons(verify_ledger(workers=1, strict=True), 20)


@pytest.mark.parametrize("depth", [100_000])
def test_a_deeply_nested_leaf_is_reported_not_crashed_on(ledger_with_history, depth):
    leaf = b'{"entry":' + b"[" * depth + b"]" * depth + b"}"
    _set_leaf(40, leaf, fix_hash=True)
    report = verify_ledger(workers=1, strict=True)
    assert "malformed" in _reasons(report, 40)


@pytest.mark.parametrize(
    "tail",
    [
        # A second author slipped in after the payload, with a space before the colon.
        ',"author" :"{other}","kind" :"key.revoked","payload" :{{"x":1}},"z":{{}}',
        # The payload closed early, then a leaf-level member.
        '}},"entry":1,"z":{{"w":{{}}',
    ],
)
def test_a_leaf_that_reads_differently_to_json_readers_is_caught_by_the_default_check(
    ledger_with_history, log_key, tail
):
    from ledger.core.envelope import build_leaf, entry_context

    signer = ledger_with_history
    doc = Entry.objects.get(index=21).document
    env = doc["entry"]
    extra = tail.format(other=log_key.fingerprint)
    envelope = (
        f'{{"author":"{signer.fingerprint}","id":"{env["id"]}","kind":"test.sample",'
        f'"payload":{{}}{extra},"time":"{env["time"]}"}}'
    ).encode()
    sig = signer.signing_key.sign(entry_context(log_origin()) + envelope).signature
    _set_leaf(21, build_leaf(envelope, 21, doc["integrated_time"], sig), fix_hash=True)
    assert "not one object filling its place" in _reasons(verify_ledger(workers=1), 21)
