"""The newest published checkpoint, kept outside the database: a database behind it (a
restored old backup) or not a prefix of it signs and appends nothing until re-ingested.

A savepoint rolled back stands in for the restore here (the database loses what was
appended after it, the file outside keeps the newest checkpoint); the real pg_dump and
pg_restore are in test_restore_drill.py.
"""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction

from consortium.governance.models import Member
from ledger import published
from ledger.checkpoints import publish_checkpoint
from ledger.core.note import Checkpoint as Body
from ledger.core.note import sign_note
from ledger.errors import LedgerError, LogBehind
from ledger.ingest import IngestError, ingest
from ledger.models import Checkpoint, Entry
from ledger.services import log_signer
from tests.steps.api import api_as
from tests.steps.ledger import export_bundle

SPAIN = {"code": "ES", "figures": {"population": 48, "gni": "1500"}}


@pytest.fixture
def restored(delegates, tmp_path):
    """Checkpoint A published; Spain's application appended and checkpoint B published
    and exported; then the database back at A (the file outside still at B)."""
    a = publish_checkpoint() or Checkpoint.objects.latest()
    sid = transaction.savepoint()
    r = api_as(delegates["ops"]).post("/api/v1/members", SPAIN, format="json")
    assert r.status_code == 201, r.content
    b = publish_checkpoint()
    bundle = export_bundle(tmp_path, "at-b.zip")
    copy = log_copy(tmp_path / "copy-at-b", b)
    transaction.savepoint_rollback(sid)
    assert Entry.objects.count() == a.tree_size < b.tree_size
    return {"a": a.tree_size, "b": b.tree_size, "b_note": b.note, "bundle": bundle, "copy": copy}


def log_copy(out, cp):
    """The copy a witness's mirror writes (``ledger.witness.export``'s format)."""
    from ledger.core.note import b64
    from ledger.witness.export import FORMAT

    out.mkdir()
    leaves = Entry.objects.order_by("index").values_list("leaf", flat=True)
    (out / "entries.jsonl").write_bytes(b"".join(bytes(leaf) + b"\n" for leaf in leaves))
    (out / "checkpoint.note").write_text(cp.note)
    meta = {"format": FORMAT, "origin": log_signer().name, "size": cp.tree_size}
    (out / "copy.json").write_text(json.dumps({**meta, "root": b64(bytes(cp.root_hash))}))
    return out


def test_every_publication_is_kept_in_the_file_outside_the_database(log_key, published_file):
    cp = publish_checkpoint()
    assert published_file.read_text() == cp.note
    assert published.read_published().size == cp.tree_size
    assert published.behind_published() is None


def test_the_file_never_moves_backwards_and_a_second_root_at_a_size_is_a_fork(
    log_key, published_file
):
    signer = log_signer()
    big = sign_note(Body(signer.name, 9, b"\1" * 32).body(), signer.note_signer())
    published.record_published(big)
    small = sign_note(Body(signer.name, 3, b"\2" * 32).body(), signer.note_signer())
    published.record_published(small)
    assert published_file.read_text() == big
    other = sign_note(Body(signer.name, 9, b"\3" * 32).body(), signer.note_signer())
    with pytest.raises(LedgerError, match="FORK ALARM: a checkpoint of size 9 was already"):
        published.record_published(other)
    assert published_file.read_text() == big


def test_a_restored_old_database_says_which_entries_are_missing(restored):
    a, b = restored["a"], restored["b"]
    assert published.behind_published() == (
        f"the database holds {a} entries but checkpoint {b} was published: entries {a} to "
        f"{b - 1} are missing; re-ingest them with `manage.py ledger ingest <export or mirror>`"
    )


def test_a_restored_old_database_signs_no_checkpoint(restored):
    with pytest.raises(
        LogBehind, match=f"will not sign a checkpoint: the database holds {restored['a']}"
    ):
        publish_checkpoint()
    with pytest.raises(
        CommandError, match=f"entries {restored['a']} to {restored['b'] - 1} are missing"
    ):
        call_command("ledger", "checkpoint")
    assert Checkpoint.objects.latest().tree_size == restored["a"]


def test_an_append_to_a_restored_old_database_is_a_503_and_writes_nothing(restored, delegates):
    entries = Entry.objects.count()
    r = api_as(delegates["ops"]).post("/api/v1/members", SPAIN, format="json")
    assert r.status_code == 503, r.content
    assert r["Content-Type"] == "application/problem+json"
    assert r.json()["title"] == "Service unavailable"
    assert "the log is read-only and will not append" in r.json()["detail"]
    assert f"entries {restored['a']} to {restored['b'] - 1} are missing" in r.json()["detail"]
    assert Entry.objects.count() == entries
    assert not Member.objects.filter(code="ES").exists()


def test_ingesting_the_export_brings_the_entries_and_their_projections_back(restored, capsys):
    call_command("ledger", "ingest", str(restored["bundle"]))
    out = capsys.readouterr().out
    assert f"Ingested {restored['b'] - restored['a']} entries" in out
    assert Entry.objects.count() == restored["b"]
    assert Member.objects.get(code="ES").status == "applicant"
    assert published.behind_published() is None
    cp = publish_checkpoint()
    # The same size signed again: the very note published before the restore.
    assert cp.tree_size == restored["b"] and cp.note == restored["b_note"]
    call_command("ledger", "verify", "--workers", "1", "--no-progress")


def test_a_source_that_stops_short_of_the_published_checkpoint_ingests_nothing(restored, tmp_path):
    copy = tmp_path / "short"
    copy.mkdir()
    leaves = [
        bytes(leaf) for leaf in Entry.objects.order_by("index").values_list("leaf", flat=True)
    ]
    (copy / "entries.jsonl").write_bytes(b"".join(leaf + b"\n" for leaf in leaves))
    (copy / "copy.json").write_text(json.dumps({"format": "consortium-ledger/log-copy/v1"}))
    with pytest.raises(
        IngestError, match="nothing was ingested: after the log copy short, the database holds"
    ):
        ingest(copy)
    assert Entry.objects.count() == restored["a"]


def test_a_source_differing_from_the_database_is_fork_evidence_and_ingests_nothing(
    restored, tmp_path
):
    copy = tmp_path / "forged"
    copy.mkdir()
    leaves = [
        bytes(leaf) for leaf in Entry.objects.order_by("index").values_list("leaf", flat=True)
    ]
    leaves[2] = leaves[2].replace(b'"integrated_time":"2', b'"integrated_time":"1')
    (copy / "entries.jsonl").write_bytes(b"".join(leaf + b"\n" for leaf in leaves))
    (copy / "copy.json").write_text(json.dumps({"format": "consortium-ledger/log-copy/v1"}))
    with pytest.raises(CommandError) as refused:
        call_command("ledger", "ingest", str(copy))
    assert "FORK EVIDENCE at index 2" in str(refused.value)
    assert "database: b'" in str(refused.value) and "source:   b'" in str(refused.value)
    assert Entry.objects.count() == restored["a"]


def test_a_database_with_another_root_at_the_published_size_is_a_fork(delegates):
    publish_checkpoint()
    size = Entry.objects.count()
    signer = log_signer()
    # A note the log key signed over another tree of the same size (a forged database
    # restored under it, or another history).
    forged = sign_note(Body(signer.name, size, b"\7" * 32).body(), signer.note_signer())
    published.path().write_text(forged)
    reason = published.behind_published()
    assert reason.startswith(f"FORK: the database's tree at size {size} has root ")
    with pytest.raises(LogBehind, match="FORK"):
        publish_checkpoint()
    r = api_as(delegates["ops"]).post("/api/v1/members", SPAIN, format="json")
    assert r.status_code == 503 and "FORK" in r.json()["detail"]
    assert Entry.objects.count() == size


def test_the_admin_says_the_ledger_is_read_only_and_why(restored, admin_client):
    page = admin_client.get("/admin/").content.decode()
    assert "<strong>The ledger is read-only</strong>" in page
    assert f"entries {restored['a']} to {restored['b'] - 1} are missing" in page
    page = admin_client.get("/admin/", HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "<strong>Le registre est en lecture seule</strong>" in page


def test_the_admin_says_nothing_of_it_when_the_database_holds_what_was_published(
    delegates, admin_client
):
    publish_checkpoint()
    assert "read-only" not in admin_client.get("/admin/").content.decode()


def test_ingesting_a_witness_log_copy_brings_the_entries_back_too(restored):
    done = ingest(restored["copy"])
    assert (done.before, done.size, done.present) == (restored["a"], restored["b"], restored["a"])
    assert Member.objects.get(code="ES").status == "applicant"
    assert published.behind_published() is None


def test_a_published_file_that_holds_no_checkpoint_keeps_the_log_read_only(delegates):
    published.path().parent.mkdir(parents=True, exist_ok=True)
    published.path().write_text("not a note\n")
    entries = Entry.objects.count()
    r = api_as(delegates["ops"]).post("/api/v1/members", SPAIN, format="json")
    assert r.status_code == 503
    assert "does not hold a checkpoint note" in r.json()["detail"]
    assert Entry.objects.count() == entries


def test_readiness_fails_while_the_database_is_behind_and_says_why(restored):
    from consortium.web.health import CheckFailed, check_ledger

    # The ledger check of /readyz (run here on the test's own connection).
    with pytest.raises(CheckFailed, match=f"read-only: the database holds {restored['a']} entries"):
        check_ledger()
