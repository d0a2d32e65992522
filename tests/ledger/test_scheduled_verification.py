"""The ledger is checked on a schedule: each run verifies what was appended since the
last run that passed, records where it got to, and raises an alarm (a CRITICAL log
record and a red banner on every admin page) when anything fails."""

from __future__ import annotations

import logging

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from ledger import checkpoints, proofs, services, tasks
from ledger.core import merkle
from ledger.models import Entry, VerificationRun
from ledger.services import Draft
from tests.steps.ledger import triggers_disabled

BANNER = "The ledger failed verification"


def _append(signer, n: int, start: int = 0) -> None:
    services.entries_append(
        signer=signer, drafts=[Draft("test.sample", {"n": i}) for i in range(start, start + n)]
    )


@pytest.fixture
def verified(sample_signer):
    """20 entries and a checkpoint, verified once by the scheduled task."""
    _append(sample_signer, 18)
    checkpoints.publish_checkpoint()
    assert tasks.verify_recent.delay().get() is True
    return sample_signer


def _rewrite_payload(index: int) -> None:
    """Change one entry's payload beneath the guards (its leaf stays well-formed JSON)."""
    leaf = bytes(Entry.objects.get(index=index).leaf)
    forged = leaf.replace(b'"n":', b'"n":1', 1)
    assert forged != leaf
    with triggers_disabled() as cur:
        cur.execute("UPDATE ledger_entry SET leaf = %s WHERE " + '"index" = %s', [forged, index])


def _critical(caplog) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "ledger.verify" and r.levelno >= logging.ERROR
    ]


def test_the_beat_schedule_runs_the_verification():
    from consortium.celery import app

    entry = next(
        e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == "ledger.verify_recent"
    )
    assert entry["schedule"] > 0
    assert "ledger.verify_recent" in app.tasks


def test_a_clean_run_advances_the_mark(verified):
    first = VerificationRun.objects.get()
    assert (first.ok, first.first, first.size, first.checkpoints) == (True, 0, 20, 1)
    assert bytes(first.root) == proofs.root_at(20)
    _append(verified, 7, start=18)
    checkpoints.publish_checkpoint()
    _append(verified, 3, start=25)
    assert tasks.verify_recent.delay().get() is True
    second = VerificationRun.objects.order_by("-id").first()
    assert (second.ok, second.first, second.size, second.checkpoints) == (True, 20, 30, 1)
    assert bytes(second.root) == proofs.root_at(30)
    # Nothing new: a run still happens, and is recorded, from where the last one ended.
    tasks.verify_recent.delay()
    third = VerificationRun.objects.order_by("-id").first()
    assert (third.ok, third.first, third.size) == (True, 30, 30)


def test_tampering_underneath_raises_an_alarm_that_stays_until_repaired(
    verified, caplog, admin_client
):
    _append(verified, 10, start=18)
    checkpoints.publish_checkpoint()
    assert BANNER not in admin_client.get("/admin/").content.decode()
    _rewrite_payload(24)
    caplog.clear()
    assert tasks.verify_recent.delay().get() is False
    run = VerificationRun.objects.order_by("-id").first()
    assert (run.ok, run.first, run.failed_index) == (False, 20, 24)
    assert run.reason
    alarms = _critical(caplog)
    assert len(alarms) == 1 and "at index 24" in alarms[0] and run.reason in alarms[0]
    # Every admin page shows it, in red.
    for page in ("/admin/", "/admin/ledger/entry/", "/admin/auth/user/"):
        body = admin_client.get(page).content.decode()
        assert BANNER in body and "index 24" in body and 'id="ledger-alarm"' in body
    # The mark did not move: the next run checks the same entries and fails again.
    caplog.clear()
    assert tasks.verify_recent.delay().get() is False
    again = VerificationRun.objects.order_by("-id").first()
    assert (again.ok, again.first, again.failed_index) == (False, 20, 24)
    assert len(_critical(caplog)) == 1
    assert BANNER in admin_client.get("/admin/").content.decode()


def test_a_stored_tree_hash_rewritten_under_a_verified_tree_is_found(verified, caplog):
    _append(verified, 4, start=18)
    with triggers_disabled() as cur:
        # The hash of leaves 16-19, on the right edge of the tree the last run verified.
        cur.execute(
            "UPDATE ledger_treehash SET hash = %s WHERE idx = %s",
            [bytes(32), merkle.stored_hash_index(2, 4)],
        )
    assert tasks.verify_recent.delay().get() is False
    run = VerificationRun.objects.order_by("-id").first()
    assert not run.ok
    assert "stored tree hashes of the first 20 entries differ" in run.what_failed
    assert any("LEDGER VERIFICATION FAILED" in m for m in _critical(caplog))


def test_a_new_checkpoint_not_signed_by_the_log_is_found(verified):
    from nacl.signing import SigningKey

    from ledger.core.note import Checkpoint as Body
    from ledger.core.note import Signer, sign_note

    _append(verified, 5, start=18)
    cp = checkpoints.publish_checkpoint()
    forged = sign_note(
        Body(cp.note.split("\n")[0], cp.tree_size, bytes(cp.root_hash)).body(),
        Signer("intruder", SigningKey.generate()),
    )
    with triggers_disabled() as cur:
        cur.execute("UPDATE ledger_checkpoint SET note = %s WHERE id = %s", [forged, cp.id])
    tasks.verify_recent.delay()
    run = VerificationRun.objects.order_by("-id").first()
    assert not run.ok and run.failed_index is None
    assert f"checkpoint at size {cp.tree_size}: no signature by a known key" in run.reason


def test_a_run_checks_at_most_its_batch_and_the_next_goes_on(sample_signer, settings):
    settings.LEDGER_VERIFY_BATCH = 8
    _append(sample_signer, 18)
    sizes = []
    for _ in range(3):
        assert tasks.verify_recent.delay().get() is True
        run = VerificationRun.objects.order_by("-id").first()
        sizes.append((run.first, run.size))
    assert sizes == [(0, 8), (8, 16), (16, 20)]


def test_the_command_runs_it_by_hand(verified, capsys):
    _append(verified, 5, start=18)
    call_command("ledger", "verify-recent", "--workers", "1")
    assert "OK: entries 20 to 24 and 0 checkpoints verify." in capsys.readouterr().out
    _append(verified, 5, start=23)
    call_command("ledger", "verify-recent", "--limit", "2")
    out = capsys.readouterr().out
    assert "OK: entries 25 to 26" in out and "3 entries are left for the next run." in out
    with triggers_disabled() as cur:
        cur.execute("UPDATE ledger_entry SET kind = 'test.other' WHERE " + '"index" = 28')
    with pytest.raises(CommandError) as caught:
        call_command("ledger", "verify-recent")
    assert caught.value.returncode == 1
    assert "FAIL at index 28: " in capsys.readouterr().err


def test_the_command_refuses_a_bad_limit(verified):
    with pytest.raises(CommandError, match="--limit must be at least 1"):
        call_command("ledger", "verify-recent", "--limit", "0")


def test_no_banner_while_the_last_run_passed_nor_for_the_signed_out(verified, client, admin_client):
    assert BANNER not in admin_client.get("/admin/").content.decode()
    _append(verified, 2, start=18)
    _rewrite_payload(21)
    assert tasks.verify_recent.delay().get() is False
    assert BANNER in admin_client.get("/admin/").content.decode()
    assert BANNER not in client.get("/admin/login/").content.decode()


def test_runs_are_append_only(verified):
    from django.db import DatabaseError, transaction
    from django.db import connection as conn

    run = VerificationRun.objects.get()
    with pytest.raises(TypeError, match="append-only"):
        run.save()
    for sql in ("UPDATE ledger_verificationrun SET ok = %s", "DELETE FROM ledger_verificationrun"):
        params = [False] if "%s" in sql else None
        with pytest.raises(DatabaseError), transaction.atomic(), conn.cursor() as cur:
            cur.execute(sql, params)
    assert VerificationRun.objects.get().ok
