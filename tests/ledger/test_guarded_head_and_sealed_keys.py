"""The log head is never removed and sealed hosted keys never change, whatever the
database role that runs the application does (it may write rows, not drop triggers)."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

from ledger import proofs, services
from ledger.core import merkle
from ledger.keys import hosted_signer, log_signer
from ledger.models import Entry, Key, LogHead, SealedKey
from tests.steps.ledger import triggers_disabled, wipe_database


def _refused(sql: str, params=None) -> str:
    with pytest.raises(DatabaseError) as caught, transaction.atomic(), connection.cursor() as cur:
        cur.execute(sql, params)
    return str(caught.value)


def _truncate(table: str) -> str:
    # SQLite has no TRUNCATE: an unqualified DELETE is its equivalent.
    if connection.vendor == "postgresql":
        return f"TRUNCATE {table}"
    return f"DELETE FROM {table}"


# --- the log head --------------------------------------------------------------------------


def test_it_refuses_to_delete_the_log_head(log_key):
    assert "ledger_loghead is refused" in _refused("DELETE FROM ledger_loghead")
    assert LogHead.objects.get(id=1).size == 1


def test_it_refuses_to_truncate_the_log_head(log_key):
    assert "ledger_loghead is refused" in _refused(_truncate("ledger_loghead"))
    assert LogHead.objects.get(id=1).size == 1


def test_it_refuses_to_delete_the_log_head_through_the_orm(log_key):
    with pytest.raises(DatabaseError, match="never removed"), transaction.atomic():
        LogHead.objects.all().delete()
    assert LogHead.objects.filter(id=1).exists()


def test_appends_still_advance_the_head(sample_signer):
    before = LogHead.objects.get(id=1).size
    services.entry_append(signer=sample_signer, kind="test.sample", payload={"n": 1})
    head = LogHead.objects.get(id=1)
    assert head.size == before + 1 == proofs.tree_size()
    assert bytes(head.frontier) == b"".join(proofs.read_hashes(merkle.root_indexes(head.size)))


def test_the_helpers_that_reach_beneath_the_guards_still_empty_the_head(committed_db):
    services.ledger_init()
    assert LogHead.objects.get(id=1).size == 1
    with triggers_disabled() as cur:
        cur.execute("DELETE FROM ledger_loghead")
        cur.execute("INSERT INTO ledger_loghead (id, size, frontier) VALUES (1, 0, %s)", [b""])
    assert LogHead.objects.get(id=1).size == 0
    wipe_database()
    assert not Entry.objects.exists() and not SealedKey.objects.exists()
    assert LogHead.objects.get(id=1).size == 0
    # The guards are back once the helpers are done.
    assert "ledger_loghead is refused" in _refused("DELETE FROM ledger_loghead")


# --- sealed hosted keys ------------------------------------------------------------------------


def test_it_refuses_to_change_a_sealed_key(log_key):
    fp = log_key.fingerprint
    for sql in (
        "UPDATE ledger_sealedkey SET kek_id = 'other' WHERE key_id = %s",
        "UPDATE ledger_sealedkey SET sealed_seed = sealed_seed WHERE key_id = %s",
        "DELETE FROM ledger_sealedkey WHERE key_id = %s",
    ):
        assert "ledger_sealedkey is refused" in _refused(sql, [fp])
    if connection.vendor == "postgresql":
        # Fire the pending foreign-key checks of the rows just written, which would
        # otherwise stop TRUNCATE before the guard is reached.
        with connection.cursor() as cur:
            cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
    assert "ledger_sealedkey is refused" in _refused(_truncate("ledger_sealedkey"))
    assert log_signer().fingerprint == fp  # still unseals


def test_the_orm_refuses_to_change_a_sealed_key_before_reaching_the_database(log_key):
    sealed = SealedKey.objects.get(key_id=log_key.fingerprint)
    with pytest.raises(TypeError, match="append-only"):
        sealed.save()
    with pytest.raises(TypeError, match="append-only"):
        sealed.delete()
    with pytest.raises(TypeError, match="append-only"):
        SealedKey.objects.filter(key_id=log_key.fingerprint).update(kek_id="other")


def test_a_rotation_seals_a_new_key_and_keeps_the_old_one(log_key):
    _, member = services.key_register(signer=log_key, kind="member", owner="NL", name="nl")
    old = SealedKey.objects.get(key_id=member.fingerprint)
    entry, new = services.key_rotate(signer=member)
    assert new is not None and new.fingerprint != member.fingerprint
    kept = SealedKey.objects.get(key_id=member.fingerprint)
    assert (kept.kek_id, bytes(kept.sealed_seed)) == (old.kek_id, bytes(old.sealed_seed))
    assert SealedKey.objects.filter(key_id=new.fingerprint).exists()
    assert Key.objects.get(fingerprint=member.fingerprint).revoked_at == entry.index
    assert hosted_signer(new.fingerprint).fingerprint == new.fingerprint
