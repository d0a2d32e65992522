"""Reads from a real streaming replica (consortium/dbrouter.py, ledger/reads.py): a copy of
the local PostgreSQL cluster made with ``pg_basebackup -R``, started on its own port and
streaming from it, so that it holds the test database as the primary writes it.

PostgreSQL only (a SQLite run skips the module). The cluster must accept replication from
127.0.0.1 (.ci/run sees to it); under CI a replica that cannot be made is a failure."""

from __future__ import annotations

import base64
import logging
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from consortium.governance.models import ApiToken
from ledger import proofs, reads, services
from ledger.checkpoints import publish_checkpoint
from ledger.models import Entry
from ledger.services import Draft

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="streaming replicas are PostgreSQL's"
)

ALIAS = "replica_test"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
# Settings a hot standby must have at least as high as its primary's.
AT_LEAST_PRIMARY = (
    "max_connections",
    "max_worker_processes",
    "max_wal_senders",
    "max_prepared_transactions",
    "max_locks_per_transaction",
)


def _unavailable(reason: str):
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(reason)
    pytest.skip(reason)


def _as_postgres(*command: str) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else list(command)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _on(alias: str, sql: str):
    with connections[alias].cursor() as cur:
        cur.execute(sql)
        return cur.fetchone()[0]


def _caught_up(seconds: float = 30) -> None:
    """Wait until the replica has replayed everything the primary wrote so far."""
    target = _on("default", "SELECT pg_current_wal_lsn()::text")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _on(ALIAS, f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn"):
            return
        time.sleep(0.05)
    raise AssertionError("the replica did not catch up with the primary")


@pytest.fixture(scope="session")
def replica(django_db_setup, django_db_blocker):
    """A streaming replica of the cluster holding the test database, as the database
    alias ``replica_test``; stopped and removed at the end."""
    primary = connections["default"].settings_dict
    if not (PG_BIN / "pg_ctl").exists() or shutil.which("pg_basebackup") is None:
        _unavailable(f"needs PostgreSQL's server binaries in {PG_BIN} and pg_basebackup")
    host, port = primary["HOST"] or "127.0.0.1", str(primary["PORT"] or 5432)
    with django_db_blocker.unblock():
        floors = {name: _on("default", f"SHOW {name}") for name in AT_LEAST_PRIMARY}
    root = Path(tempfile.mkdtemp(prefix="consortium-replica-"))
    data = root / "data"
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    root.chmod(0o700)
    made = subprocess.run(
        _as_postgres(
            "pg_basebackup",
            *("-h", host, "-p", port, "-U", primary["USER"] or "postgres"),
            *("-D", str(data), "-R", "-X", "stream", "-c", "fast"),
        ),
        capture_output=True,
        text=True,
        check=False,
    )
    if made.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        _unavailable(
            f"pg_basebackup of {host}:{port} failed (does pg_hba.conf allow replication "
            f"from 127.0.0.1? .ci/run adds it): {made.stderr.strip()}"
        )
    replica_port = _free_port()
    conf = [
        f"port = {replica_port}",
        "listen_addresses = '127.0.0.1'",
        f"unix_socket_directories = '{root}'",
        "hot_standby = on",
        "fsync = off",
        *(f"{name} = {value}" for name, value in floors.items()),
    ]
    # Debian keeps the configuration outside the data directory: the copy gets its own.
    for name, text in (
        ("postgresql.conf", "\n".join(conf) + "\n"),
        ("pg_hba.conf", "local all all trust\nhost all all 127.0.0.1/32 trust\n"),
    ):
        subprocess.run(
            _as_postgres("sh", "-c", f"cat > {data / name}"), input=text, text=True, check=True
        )
    pg_ctl = [str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w"]
    started = subprocess.run(
        _as_postgres(*pg_ctl, "start"), capture_output=True, text=True, check=False
    )
    if started.returncode != 0:
        log = (root / "log").read_text() if (root / "log").exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"the replica did not start: {started.stdout}{started.stderr}{log}")
    connections.settings[ALIAS] = {**primary, "HOST": "127.0.0.1", "PORT": str(replica_port)}
    try:
        with django_db_blocker.unblock():
            deadline = time.monotonic() + 60
            while (
                _on(ALIAS, "SELECT count(*) FROM pg_stat_wal_receiver WHERE status = 'streaming'")
                == 0
            ):
                if time.monotonic() > deadline:
                    pytest.fail("the replica is not streaming from the primary")
                time.sleep(0.1)
            yield {"alias": ALIAS, "pg_ctl": pg_ctl, "root": root}
    finally:
        with django_db_blocker.unblock():
            connections[ALIAS].close()
        subprocess.run(_as_postgres(*pg_ctl, "-m", "immediate", "stop"), capture_output=True)
        del connections.settings[ALIAS]
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def reading(replica, committed_signer, monkeypatch):
    """A log of 40 entries with a checkpoint, replayed on the replica; reads of the read
    endpoints go to it; a superuser's bearer client."""
    monkeypatch.setattr(settings, "DATABASE_REPLICAS", [ALIAS], raising=False)
    reads._resting.clear()
    services.entries_append(
        signer=committed_signer, drafts=[Draft("test.sample", {"n": i}) for i in range(38)]
    )
    publish_checkpoint()
    admin = get_user_model().objects.create_superuser("reader", password="unused-pass-123")
    _, plaintext = ApiToken.issue(user=admin, name="replica reads", days=1)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    _caught_up()
    yield client
    _on(ALIAS, "SELECT pg_wal_replay_resume()")
    reads._resting.clear()


def _queries(alias: str):
    return CaptureQueriesContext(connections[alias])


def test_a_proof_is_read_from_the_replica_which_is_in_recovery(reading):
    with _queries(ALIAS) as on_replica, _queries("default") as on_primary:
        r = reading.get("/api/v1/ledger/proofs/inclusion?index=7&tree_size=40")
    assert r.status_code == 200, r.content
    assert r.json()["proof"] == [
        base64.b64encode(h).decode() for h in proofs.inclusion_proof(7, 40)
    ]
    replica_sql = " ".join(q["sql"] for q in on_replica.captured_queries)
    assert "ledger_treehash" in replica_sql and "ledger_entry" in replica_sql
    # The primary answered the token (authentication reads before the view), not the proof.
    assert not any("ledger_treehash" in q["sql"] for q in on_primary.captured_queries)
    assert _on(ALIAS, "SELECT pg_is_in_recovery()") is True
    assert _on("default", "SELECT pg_is_in_recovery()") is False


def test_the_checkpoint_and_the_entries_are_read_from_the_replica(reading):
    with _queries(ALIAS) as on_replica:
        checkpoint = reading.get("/api/v1/ledger/checkpoint")
        entry = reading.get("/api/v1/ledger/entries/12")
        page = reading.get("/api/v1/ledger/entries?limit=5")
    assert checkpoint.status_code == entry.status_code == page.status_code == 200
    assert checkpoint["ETag"].startswith('"40-')
    assert entry.json()["index"] == 12
    sql = " ".join(q["sql"] for q in on_replica.captured_queries)
    assert "ledger_checkpoint" in sql and "ledger_entry" in sql


def test_a_write_goes_to_the_primary_and_the_reads_after_it_too(reading):
    with reads.replica_reads() as alias:
        assert alias == ALIAS
        assert Entry.objects.count() == 40 and reads.replica_alias() == ALIAS
        with _queries(ALIAS) as on_replica, _queries("default") as on_primary:
            user = get_user_model().objects.create_user("fresh", password="unused-pass-123")
            seen = get_user_model().objects.get(pk=user.pk)
        assert seen.username == "fresh"
        assert on_replica.captured_queries == []
        assert any("INSERT" in q["sql"] for q in on_primary.captured_queries)
        assert reads.replica_alias() is None


def test_inside_a_transaction_reads_go_to_the_primary(reading):
    from django.db import transaction

    with reads.replica_reads(), transaction.atomic(), _queries(ALIAS) as on_replica:
        assert Entry.objects.filter(index=3).exists()
        assert proofs.tree_size() == 40
    assert on_replica.captured_queries == []


def test_what_the_replica_has_not_replayed_yet_is_answered_by_the_primary(
    reading, committed_signer
):
    _on(ALIAS, "SELECT pg_wal_replay_pause()")
    old = reading.get("/api/v1/ledger/checkpoint")
    services.entries_append(
        signer=committed_signer, drafts=[Draft("test.sample", {"n": i}) for i in range(20)]
    )
    publish_checkpoint()
    assert _on(ALIAS, "SELECT count(*) FROM ledger_entry") == 40
    # An entry, a proof in a tree size and a tlog-proof the replica does not hold: 200.
    entry = reading.get("/api/v1/ledger/entries/55")
    assert entry.status_code == 200, entry.content
    proof = reading.get("/api/v1/ledger/proofs/inclusion?index=50&tree_size=60")
    assert proof.status_code == 200, proof.content
    assert reading.get("/api/v1/ledger/entries/52/tlog-proof").status_code == 200
    # The replica's checkpoint is the older one...
    assert reading.get("/api/v1/ledger/checkpoint")["ETag"] == old["ETag"]
    # ...but a client that has seen the newer one never gets the older back.
    newer = services.cosigned_checkpoint().note.encode()
    from ledger.api.caching import etag

    seen = etag(newer, 60)
    again = reading.get("/api/v1/ledger/checkpoint", HTTP_IF_NONE_MATCH=seen)
    assert again.status_code == 304 and again["ETag"] == seen
    # A true 404 stays one: the primary confirms it.
    assert reading.get("/api/v1/ledger/entries/900").status_code == 404


def test_a_replica_that_stops_answering_leaves_the_reads_to_the_primary(reading, replica, caplog):
    subprocess.run(_as_postgres(*replica["pg_ctl"], "-m", "fast", "stop"), check=True)
    try:
        with caplog.at_level(logging.WARNING, logger="ledger.reads"):
            first = reading.get("/api/v1/ledger/proofs/inclusion?index=3&tree_size=40")
            second = reading.get("/api/v1/ledger/checkpoint")
        assert first.status_code == second.status_code == 200
        warned = [r for r in caplog.records if r.name == "ledger.reads"]
        assert len(warned) == 1 and f"replica {ALIAS} failed" in warned[0].getMessage()
        assert ALIAS in reads._resting
    finally:
        connections[ALIAS].close()
        subprocess.run(_as_postgres(*replica["pg_ctl"], "start"), check=True, capture_output=True)
