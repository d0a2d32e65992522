"""The restore drill (scripts/restore-drill.sh) on a real base backup with its WAL archive,
to the end and to a point in time, and on a pg_dump: a cluster of our own (initdb),
pg_basebackup, pg_dump, and the drill's scratch cluster started with pg_ctl."""

from __future__ import annotations

import subprocess
import time
from datetime import UTC, datetime

import pytest

from tests.steps.restore import DRILL, PG_BIN, Site, grow_code, pg_or_skip, start_cluster


@pytest.fixture
def cluster():
    pg_or_skip()
    c = start_cluster()
    yield c
    c.stop()


def drill(site: Site, db: str, *args: str) -> subprocess.CompletedProcess:
    import sys

    env = site.env(db)
    return subprocess.run(
        ["bash", str(DRILL), "--python", sys.executable, "--workers", "1", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_the_drill_restores_a_base_backup_to_the_end_and_to_a_point_in_time(cluster, tmp_path):
    site = Site(
        var=tmp_path / "var",
        published=tmp_path / "outside" / "published-checkpoint",
        server=cluster.server,
    )
    db = site.database("live")
    site.manage(db, "migrate", "-v0")
    site.manage(db, "ledger", "init")
    site.shell(db, grow_code("before", 10))
    a = int(site.manage(db, "ledger", "checkpoint").stdout.split("\n")[1])
    backup = tmp_path / "base"
    subprocess.run(
        [
            str(PG_BIN / "pg_basebackup"),
            "-d",
            cluster.server,
            "-D",
            str(backup),
            "-X",
            "stream",
            "-c",
            "fast",
        ],
        check=True,
        timeout=300,
    )
    dump = tmp_path / "at-a.dump"
    subprocess.run([str(PG_BIN / "pg_dump"), "-Fc", "-f", str(dump), site.url(db)], check=True)
    cluster.switch_wal()
    time.sleep(1.1)
    between = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00")
    time.sleep(1.1)
    site.shell(db, grow_code("after", 7))
    b = int(site.manage(db, "ledger", "checkpoint").stdout.split("\n")[1])
    cluster.switch_wal()

    # To the end of the archive: everything published is there.
    done = drill(
        site,
        db,
        "--base-backup",
        str(backup),
        "--wal-archive",
        str(cluster.archive),
        "--database",
        db,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for phase in ("restore", "verify", "replay", "compare", "total"):
        assert any(
            line.startswith(phase) and line.endswith(" s") for line in done.stdout.splitlines()
        )
    assert f"restored: {b} entries" in done.stdout
    assert (
        f"VERDICT: READY: {b} entries verify, replay, and hold every checkpoint published"
        in done.stdout
    )

    # To a point in time before checkpoint B: consistent, but behind what was published.
    sentence = (
        f"the database holds {a} entries but checkpoint {b} was published: entries {a} to "
        f"{b - 1} are missing"
    )
    pitr = drill(
        site,
        db,
        "--base-backup",
        str(backup),
        "--wal-archive",
        str(cluster.archive),
        "--target-time",
        between,
        "--database",
        db,
    )
    assert pitr.returncode == 3, pitr.stdout + pitr.stderr
    assert f"restored: {a} entries" in pitr.stdout and sentence in pitr.stderr
    assert "VERDICT: RESTORED BUT BEHIND" in pitr.stdout

    # A pg_dump made at A, restored into a new database beside the live one.
    dumped = drill(site, "postgres", "--dump", str(dump))
    assert dumped.returncode == 3, dumped.stdout + dumped.stderr
    assert f"restored: {a} entries" in dumped.stdout and sentence in dumped.stderr
    # Nothing is left behind: the scratch database is dropped.
    assert cluster.sql(
        "postgres", "SELECT count(*) FROM pg_database WHERE datname LIKE 'restore_drill_%'"
    ) == [(0,)]
    site.drop()


def test_the_drill_explains_itself_and_refuses_what_it_cannot_restore(tmp_path):
    shown = subprocess.run(["bash", str(DRILL), "--help"], capture_output=True, text=True)
    assert shown.returncode == 0 and "--base-backup DIR" in shown.stdout
    wrong = subprocess.run(
        ["bash", str(DRILL), "--base-backup", str(tmp_path)], capture_output=True, text=True
    )
    assert wrong.returncode == 2 and "not a plain-format base backup" in wrong.stderr
    both = subprocess.run(
        ["bash", str(DRILL), "--target-time", "2026-01-01", "--dump", "x"],
        capture_output=True,
        text=True,
    )
    assert both.returncode == 2 and "--target-time needs --wal-archive" in both.stderr
