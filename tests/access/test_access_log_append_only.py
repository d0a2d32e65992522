"""The access log is evidence: once a download served or refused is written down, the
database refuses to change or remove it, whatever role the application runs as."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

from consortium.access import downloads
from consortium.access.models import DownloadEvent


@pytest.fixture
def access_log(db):
    downloads.record(
        member="SE",
        checkpoint="ab" * 32,
        path="model.safetensors",
        outcome="served",
        token="t1",
        size=7000,
    )
    downloads.record(
        member="NL",
        checkpoint="ab" * 32,
        path="model.safetensors",
        outcome="denied",
        reason="the balance ratio is below the minimum",
    )
    return list(DownloadEvent.objects.order_by("id"))


def _refused(sql: str, params=None) -> str:
    with pytest.raises(DatabaseError) as caught, transaction.atomic(), connection.cursor() as cur:
        cur.execute(sql, params)
    return str(caught.value)


def test_it_refuses_to_rewrite_a_line_of_the_access_log(access_log):
    served = access_log[0]
    for sql in (
        "UPDATE consortium_downloadevent SET outcome = 'denied' WHERE id = %s",
        "UPDATE consortium_downloadevent SET bytes_served = 0 WHERE id = %s",
        "UPDATE consortium_downloadevent SET member = 'PL' WHERE id = %s",
    ):
        assert "consortium_downloadevent is refused" in _refused(sql, [served.id])
    again = DownloadEvent.objects.get(id=served.id)
    assert (again.outcome, again.bytes_served, again.member) == ("served", 7000, "SE")


def test_it_refuses_to_remove_a_line_of_the_access_log(access_log):
    denied = access_log[1]
    assert "append-only" in _refused(
        "DELETE FROM consortium_downloadevent WHERE id = %s", [denied.id]
    )
    assert DownloadEvent.objects.count() == 2


def test_it_refuses_to_empty_the_access_log(access_log):
    if connection.vendor == "postgresql":
        assert "append-only" in _refused("TRUNCATE consortium_downloadevent")
    else:
        # SQLite has no TRUNCATE; an unqualified DELETE is its equivalent.
        assert "append-only" in _refused("DELETE FROM consortium_downloadevent")
    assert DownloadEvent.objects.count() == 2


def test_the_orm_refuses_before_reaching_the_database(access_log):
    line = access_log[0]
    line.outcome = "denied"
    with pytest.raises(TypeError, match="append-only"):
        line.save()
    with pytest.raises(TypeError, match="append-only"):
        line.delete()
    with pytest.raises(TypeError, match="append-only"):
        DownloadEvent.objects.filter(member="SE").update(bytes_served=0)
    with pytest.raises(TypeError, match="append-only"):
        DownloadEvent.objects.all().delete()
    assert DownloadEvent.objects.get(id=line.id).outcome == "served"


def test_new_lines_are_still_added(access_log):
    downloads.record(member="PL", outcome="denied", reason="malformed download token")
    assert DownloadEvent.objects.count() == 3
