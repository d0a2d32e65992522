"""The database itself refuses to rewrite history, whatever the application does."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

from ledger import checkpoints
from ledger.models import Checkpoint, Entry, TreeHash

TABLES = ["ledger_entry", "ledger_treehash", "ledger_checkpoint"]


@pytest.fixture
def history(sample_signer):
    from ledger import services

    services.entry_append(signer=sample_signer, kind="test.sample", payload={"n": 1})
    checkpoints.publish_checkpoint()


def _refused(sql: str) -> str:
    with pytest.raises(DatabaseError) as caught, transaction.atomic(), connection.cursor() as cur:
        cur.execute(sql)
    return str(caught.value)


@pytest.mark.parametrize("table", TABLES)
def test_raw_sql_update_is_refused(history, table):
    column = {
        "ledger_entry": "kind = 'x.y'",
        "ledger_treehash": "hash = hash",
        "ledger_checkpoint": "note = ''",
    }[table]
    assert "append-only" in _refused(f"UPDATE {table} SET {column}")


@pytest.mark.parametrize("table", TABLES)
def test_raw_sql_delete_is_refused(history, table):
    assert "append-only" in _refused(f"DELETE FROM {table}")


@pytest.mark.parametrize("table", TABLES)
def test_truncate_is_refused(history, table):
    if connection.vendor == "postgresql":
        assert "append-only" in _refused(f"TRUNCATE {table}")
    else:
        # SQLite has no TRUNCATE; its equivalent is an unqualified DELETE, which the
        # truncate optimisation would run without row triggers if any existed.
        assert "append-only" in _refused(f"DELETE FROM {table}")
    assert Entry.objects.exists() and TreeHash.objects.exists() and Checkpoint.objects.exists()


def test_the_orm_refuses_updates_and_deletes_before_reaching_the_database(history):
    entry = Entry.objects.get(index=0)
    with pytest.raises(TypeError, match="append-only"):
        entry.save()
    with pytest.raises(TypeError, match="append-only"):
        entry.delete()
    with pytest.raises(TypeError, match="append-only"):
        Entry.objects.filter(index=0).update(kind="x.y")
    with pytest.raises(TypeError, match="append-only"):
        Checkpoint.objects.all().delete()


def test_a_key_row_may_only_gain_its_revocation(history):
    from ledger.models import Key

    fp = Key.objects.get(kind="service").fingerprint
    for sql in (
        "UPDATE ledger_key SET owner = 'mallory' WHERE fingerprint = %s",
        "UPDATE ledger_key SET public_key = public_key, valid_from = 0 WHERE fingerprint = %s",
        "DELETE FROM ledger_key WHERE fingerprint = %s",
    ):
        with (
            pytest.raises(DatabaseError) as caught,
            transaction.atomic(),
            connection.cursor() as cur,
        ):
            cur.execute(sql, [fp])
        assert "ledger_key is refused" in str(caught.value)
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cur:
        # A revocation must point at a revocation entry: index 2 is a sample entry.
        cur.execute("UPDATE ledger_key SET revoked_at = 2 WHERE fingerprint = %s", [fp])
    from ledger import services
    from ledger.keys import log_signer

    revocation = services.key_revoke(signer=log_signer(), fingerprint=fp, reason="retired")
    assert Key.objects.get(fingerprint=fp).revoked_at == revocation.index
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cur:
        # Once revoked, not even the revocation can be undone or moved.
        cur.execute("UPDATE ledger_key SET revoked_at = NULL WHERE fingerprint = %s", [fp])
