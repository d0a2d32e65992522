"""A real pg_dump restored after the log published more: the restored database is
read-only and says what is missing, until the missing entries are re-ingested.

Every step is the operator's command in a child process (manage.py, pg_dump,
pg_restore) against scratch PostgreSQL databases, sharing one deployment's files: the
KEK and keys in VAR_DIR, and the published checkpoint outside the database.
"""

from __future__ import annotations

import subprocess

import pytest

from tests.steps.restore import Site, export_code, grow_code, pg_or_skip


@pytest.fixture
def site(tmp_path):
    pg_or_skip()
    s = Site(var=tmp_path / "var", published=tmp_path / "outside" / "published-checkpoint")
    yield s
    s.drop()


@pytest.fixture
def backed_up(site, tmp_path):
    """Checkpoint A published and dumped; then more entries, checkpoint B published and
    exported (the file outside now holds B)."""
    live = site.database("live")
    site.manage(live, "migrate", "-v0")
    site.manage(live, "ledger", "init")
    site.shell(live, grow_code("before", 12))
    a = site.manage(live, "ledger", "checkpoint").stdout
    dump = tmp_path / "at-a.dump"
    subprocess.run(
        ["pg_dump", "-Fc", "--no-owner", "-f", str(dump), site.url(live)], check=True, timeout=300
    )
    site.shell(live, grow_code("after", 9))
    b = site.manage(live, "ledger", "checkpoint").stdout
    export = tmp_path / "at-b.zip"
    site.shell(live, export_code(export))
    assert site.published.read_text() == b
    size_a, size_b = int(a.split("\n")[1]), int(b.split("\n")[1])
    return {"dump": dump, "export": export, "a": size_a, "b": size_b, "b_note": b}


def restore(site, dump, label="restored") -> str:
    db = site.database(label)
    subprocess.run(
        ["pg_restore", "--no-owner", "--exit-on-error", "-d", site.url(db), str(dump)],
        check=True,
        timeout=300,
    )
    return db


def test_a_restored_old_dump_is_read_only_until_the_export_is_ingested(site, backed_up):
    a, b = backed_up["a"], backed_up["b"]
    db = restore(site, backed_up["dump"])
    assert site.count(db) == a
    sentence = (
        f"the database holds {a} entries but checkpoint {b} was published: entries {a} to "
        f"{b - 1} are missing; re-ingest them with `manage.py ledger ingest <export or mirror>`"
    )

    refused = site.manage(db, "ledger", "checkpoint", check=False)
    assert refused.returncode == 1 and sentence in refused.stderr

    behind = site.manage(db, "ledger", "behind", check=False)
    assert behind.returncode == 3 and sentence in behind.stderr
    asked = site.shell(
        db, "from ledger.published import behind_published; print(behind_published())"
    )
    assert asked.stdout.strip() == sentence

    append = site.shell(db, grow_code("meanwhile", 3), check=False)
    assert append.returncode != 0
    assert "LogBehind: the log is read-only and will not append" in append.stderr
    assert site.count(db) == a

    ingested = site.manage(db, "ledger", "ingest", str(backed_up["export"]))
    assert f"Ingested {b - a} entries ({a} to {b - 1}); {a} the database held" in ingested.stdout
    assert site.count(db) == b

    signed = site.manage(db, "ledger", "checkpoint")
    # The same size signed again: the very note published before the restore.
    assert signed.stdout == backed_up["b_note"]
    assert "OK: " in site.manage(db, "ledger", "verify", "--no-progress").stdout
    assert "OK: " in site.manage(db, "ledger", "replay", "--check").stdout
    assert site.manage(db, "ledger", "behind").returncode == 0
    site.shell(db, grow_code("later", 2))
    assert site.count(db) == b + 3


def test_a_restored_dump_grown_into_another_tree_of_the_published_size_is_a_fork(
    site, backed_up, tmp_path
):
    a, b = backed_up["a"], backed_up["b"]
    db = restore(site, backed_up["dump"], "forked")
    # Someone grows the restored database with the guard pointed elsewhere: another tree
    # of the very size published (one key registration and b - a - 2 samples, as before).
    site.shell(db, grow_code("other", b - a - 1), LEDGER_PUBLISHED_PATH=str(tmp_path / "elsewhere"))
    assert site.count(db) == b

    refused = site.manage(db, "ledger", "checkpoint", check=False)
    assert refused.returncode == 1
    assert f"FORK: the database's tree at size {b} has root " in refused.stderr
    behind = site.manage(db, "ledger", "behind", check=False)
    assert behind.returncode == 1 and "FORK" in behind.stderr

    ingest = site.manage(db, "ledger", "ingest", str(backed_up["export"]), check=False)
    assert ingest.returncode == 1
    assert f"FORK EVIDENCE at index {a}:" in ingest.stderr
    assert "database: b'" in ingest.stderr and "source:   b'" in ingest.stderr
    assert site.count(db) == b
