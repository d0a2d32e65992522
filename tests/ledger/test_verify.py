"""`ledger verify` finds any change to stored history and names the first bad index."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from ledger import log, services
from ledger.core import merkle
from ledger.keys import EntrySigner
from ledger.models import Entry
from ledger.services import Draft
from ledger.verify import verify_ledger
from tests.ledger.helpers import triggers_disabled


@pytest.fixture
def ledger_with_history(sample_signer):
    services.entries_append(
        signer=sample_signer,
        drafts=[Draft("test.sample", {"n": i, "note": "ok"}) for i in range(40)],
    )
    log.publish_checkpoint()
    services.entries_append(
        signer=sample_signer, drafts=[Draft("test.sample", {"n": i}) for i in range(40, 60)]
    )
    log.publish_checkpoint()
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

    forged = sign_envelope({**env, "author": intruder.fingerprint}, intruder.signing_key)
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

    cp = log.latest_checkpoint()
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
    from ledger.models import Key

    Key.objects.filter(fingerprint=ledger_with_history.fingerprint).update(
        revoked_at=None, valid_from=0
    )
    report = verify_ledger(workers=1)
    assert any("differs from its entries" in p for p in report.problems)


def test_a_log_head_out_of_step_with_the_entries_is_found_and_stops_appends(ledger_with_history):
    from ledger.log import LedgerError
    from ledger.models import LogHead

    LogHead.objects.filter(id=1).update(size=70)
    assert any("log head" in p for p in verify_ledger(workers=1).problems)
    with pytest.raises(LedgerError, match="log head says size 70"):
        services.entry_append(signer=ledger_with_history, kind="test.sample", payload={})
