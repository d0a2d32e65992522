"""Concurrent writers in separate processes: one gapless sequence, no fork.

These commit for real (``committed_db``) so that the writer processes see the same
database; they run on whichever engine the suite runs on (PostgreSQL in CI, and
SQLite).
"""

from __future__ import annotations

import os
import signal
import time

import pytest
from django.db import connection

from ledger import checkpoints
from ledger.models import Entry
from ledger.verify import verify_ledger
from tests.steps.ledger import start_writer

pytestmark = pytest.mark.slow


@pytest.fixture
def writer_key(committed_signer):
    return committed_signer.fingerprint


def _indexes() -> list[int]:
    return list(Entry.objects.order_by("index").values_list("index", flat=True))


def test_concurrent_writers_produce_one_gapless_sequence_that_verifies(writer_key):
    writers, each = 6, 40
    procs = [
        start_writer("--key", writer_key, "--count", str(each), "--tag", f"w{i}")
        for i in range(writers)
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    assert _indexes() == list(range(2 + writers * each))
    per_writer = {}
    for e in Entry.objects.filter(kind="test.sample"):
        per_writer.setdefault(e.payload["writer"], []).append(e.payload["n"])
    assert {w: sorted(ns) for w, ns in per_writer.items()} == {
        f"w{i}": list(range(each)) for i in range(writers)
    }
    # Each writer's own entries are in its commit order.
    for ns in per_writer.values():
        assert ns == sorted(ns)
    checkpoints.publish_checkpoint()
    report = verify_ledger(workers=2)
    assert report.ok, (report.failures[:3], report.problems[:3])


def test_concurrent_bulk_appends_interleave_as_whole_batches(writer_key):
    procs = [
        start_writer("--key", writer_key, "--count", "300", "--batch", "100", "--tag", f"b{i}")
        for i in range(3)
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    assert _indexes() == list(range(2 + 900))
    # A batch is one transaction, so its 100 entries sit at consecutive indexes.
    rows = list(Entry.objects.filter(kind="test.sample").order_by("index"))
    for start in range(0, 900, 100):
        tags = {r.payload["writer"] for r in rows[start : start + 100]}
        assert len(tags) == 1
    assert verify_ledger(workers=2).ok


def test_a_writer_killed_mid_append_leaves_a_ledger_that_verifies_with_no_gap(writer_key):
    proc = start_writer(
        "--key", writer_key, "--count", "100000", "--batch", "50", "--tag", "doomed"
    )
    # Wait until it has committed a few batches, then kill it without warning.
    deadline = time.monotonic() + 60
    committed = 0
    while committed < 3 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.strip():
            committed += 1
    assert committed == 3, proc.stderr.read()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    connection.close()  # fresh connection: see everything the dead writer committed

    indexes = _indexes()
    assert indexes == list(range(len(indexes)))
    assert (len(indexes) - 2) % 50 == 0  # only whole transactions survive
    report = verify_ledger(workers=2)
    assert report.ok, (report.failures[:3], report.problems[:3])

    # The lock died with the writer's session: others append straight on.
    survivor = start_writer("--key", writer_key, "--count", "5", "--tag", "survivor")
    _, err = survivor.communicate(timeout=60)
    assert survivor.returncode == 0, err
    assert _indexes() == list(range(len(indexes) + 5))
    # Without a broker each writer publishes a checkpoint when its transaction commits.
    assert checkpoints.latest_checkpoint().tree_size == len(indexes) + 5
    assert verify_ledger(workers=2).ok
