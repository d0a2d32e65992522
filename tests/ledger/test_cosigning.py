"""The log's side of witnessing, against witnesses run as real processes
(``python -m ledger.witness serve``, each with its own key, its own state and its own
port): each checkpoint sent to every registered witness at once, 409 answered with a
proof from the witness's size, 422 and a witness ahead of the log raised as alarms, and
the checkpoint endpoint serving the newest checkpoint that meets the adopted policy.

Personas: the signatories of France, Germany and Italy each register their member's
witness (``delegates``); the secretariat appends and publishes.
"""

from __future__ import annotations

import logging

import pytest
from django.test import override_settings

from ledger import services
from ledger.core.note import Checkpoint as Body
from ledger.core.note import sign_note
from ledger.core.policy import parse_policy
from ledger.errors import LogBehind
from ledger.keys import log_signer
from ledger.models import Cosignature, WitnessAlarm, WitnessContact
from ledger.witness.cosignature import parse_cosignature_vkey, verify_cosignatures
from tests import worlds
from tests.steps.api import api_as
from tests.steps.cosigning import Witnesses, adopt, grow, policy, recording
from tests.steps.ledger import log_vkey
from tests.steps.signin import sign_in
from tests.steps.witness import add, start_witness

delegates = worlds.shared("delegates")
MEMBERS = ("FR", "DE", "IT")


@pytest.fixture
def witnesses(tmp_path):
    ws = Witnesses(tmp_path)
    yield ws
    ws.close()


@pytest.fixture
def recorded(monkeypatch):
    return recording(monkeypatch)


def test_each_checkpoint_is_cosigned_by_every_witness_in_parallel(delegates, witnesses, recorded):
    for code in MEMBERS:
        witnesses.start(code, register=delegates)
    cp = grow(5)
    assert sorted(Cosignature.objects.filter(checkpoint=cp).values_list("witness", flat=True)) == [
        "witness.de.example",
        "witness.fr.example",
        "witness.it.example",
    ]
    assert {status for _, _, status in recorded} == {200}
    assert {line for _, line, _ in recorded} == {"old 0"}
    served = services.cosigned_checkpoint()
    assert served.checkpoint == cp and served.meets_policy
    for w in witnesses.running.values():
        assert len(verify_cosignatures(served.note, parse_cosignature_vkey(w["vkey"]))) == 1
        contact = WitnessContact.objects.get(witness=w["name"])
        assert (contact.last_size, contact.last_error) == (cp.tree_size, "")
    # The next checkpoint goes with a consistency proof from the size each cosigned.
    recorded.clear()
    cp2 = grow(3)
    assert {line for _, line, _ in recorded} == {f"old {cp.tree_size}"}
    assert Cosignature.objects.filter(checkpoint=cp2).count() == 3
    assert not WitnessAlarm.objects.exists()


def test_a_409_is_answered_with_a_proof_from_the_witness_size(delegates, witnesses, recorded):
    fr = witnesses.start("FR", register=delegates)
    cp = grow(4)
    # The log forgets where the witness stands (its contact row is working state).
    WitnessContact.objects.all().delete()
    recorded.clear()
    cp2 = grow(6)
    assert [(line, status) for _, line, status in recorded] == [
        ("old 0", 409),
        (f"old {cp.tree_size}", 200),
    ]
    assert Cosignature.objects.filter(checkpoint=cp2, witness=fr["name"]).exists()
    assert WitnessContact.objects.get(witness=fr["name"]).last_size == cp2.tree_size
    assert not WitnessAlarm.objects.exists()


def test_a_refusal_is_an_alarm_never_retried(delegates, witnesses, recorded, caplog):
    fr = witnesses.start("FR", register=delegates)
    size = services.tree_size() + 3
    # The witness was shown another tree of this size, signed by the log's key: a fork.
    forked = sign_note(
        Body(log_signer().name, size, b"\x07" * 32).body(), log_signer().note_signer()
    )
    assert add(fr["addr"], f"old 0\n\n{forked}".encode())[0] == 200
    caplog.set_level(logging.CRITICAL, logger="ledger.log")
    cp = grow(3)
    assert cp.tree_size == size
    assert [status for _, _, status in recorded] == [409, 422]
    alarm = WitnessAlarm.objects.get()
    assert (alarm.witness, alarm.kind, alarm.log_size) == (fr["name"], "refused", size)
    assert "fork" in alarm.detail
    assert any(
        "WITNESS ALARM" in r.message for r in caplog.records if r.levelno == logging.CRITICAL
    )
    assert not Cosignature.objects.filter(checkpoint=cp).exists()
    # The counter, in the API.
    assert api_as(delegates["ops"]).get("/api/v1/ledger/witnesses/alarms/count").json() == {
        "alarms": 1
    }


def test_a_witness_ahead_of_the_log_is_an_alarm_naming_both_sizes(delegates, witnesses, recorded):
    fr = witnesses.start("FR", register=delegates)
    ahead = services.tree_size() + 1000
    note = sign_note(
        Body(log_signer().name, ahead, b"\x01" * 32).body(), log_signer().note_signer()
    )
    assert add(fr["addr"], f"old 0\n\n{note}".encode())[0] == 200
    cp = grow(2)
    assert [status for _, _, status in recorded] == [409]
    alarm = WitnessAlarm.objects.get()
    assert (alarm.kind, alarm.log_size, alarm.witness_size) == ("ahead", cp.tree_size, ahead)
    assert f"holds size {ahead}" in alarm.detail
    listed = api_as(delegates["ops"]).get("/api/v1/ledger/witnesses").json()["results"]
    assert listed[0]["alarms"] == 1 and listed[0]["last_size"] == ahead


def test_the_checkpoint_endpoint_serves_the_newest_checkpoint_meeting_the_policy(
    delegates, witnesses
):
    for code in MEMBERS:
        witnesses.start(code, register=delegates)
    client = api_as(delegates["ops"])
    first = grow(3)
    r = client.get("/api/v1/ledger/checkpoint")
    assert r["Witness-Policy"] == "none"
    text = policy(witnesses, 2)
    adopt(text)
    witnesses.stop("de")
    witnesses.stop("it")
    second = grow(3)  # only France's witness cosigns it
    assert Cosignature.objects.filter(checkpoint=second).count() == 1
    r = client.get("/api/v1/ledger/checkpoint")
    assert r.status_code == 200 and r["Witness-Policy"] == "met"
    note = r.content.decode()
    assert note.startswith(first.note)
    assert parse_policy(text).check(note, log_signer().name, log_vkeys=(log_vkey(),)).ok
    # The log's own latest stays there for the witnesses.
    latest = client.get("/api/v1/ledger/checkpoint/latest")
    assert latest.content.decode() == second.note


def test_fail_closed_answers_503_naming_the_missing_witnesses(delegates, witnesses):
    for code in MEMBERS:
        witnesses.start(code, register=delegates)
    witnesses.stop("de")
    witnesses.stop("it")
    adopt(policy(witnesses, 2))
    cp = grow(3)
    client = api_as(delegates["ops"], raise_request_exception=False)
    r = client.get("/api/v1/ledger/checkpoint")
    assert r.status_code == 503 and r["Content-Type"] == "application/problem+json"
    detail = r.json()["detail"]
    assert "witness.de.example, witness.it.example" in detail
    assert f"size {cp.tree_size}" in detail and "1 of 2 needed" in detail
    served = services.cosigned_checkpoint()
    assert not served.meets_policy and served.checkpoint == cp
    assert served.missing == ("witness.de.example", "witness.it.example")
    contact = WitnessContact.objects.get(witness="witness.de.example")
    assert "no answer" in contact.last_error


def test_fail_open_serves_the_latest_and_says_so(delegates, witnesses, client):
    for code in MEMBERS:
        witnesses.start(code, register=delegates)
    witnesses.stop("de")
    witnesses.stop("it")
    adopt(policy(witnesses, 2))
    cp = grow(3)
    with override_settings(LEDGER_WITNESS_FAIL_OPEN=True):
        r = api_as(delegates["ops"]).get("/api/v1/ledger/checkpoint")
        assert r.status_code == 200
        assert r["Witness-Policy"] == "unmet; fail-open"
        assert r.content.decode().startswith(cp.note)
        # The admin says so on every page.
        sign_in(client, delegates["ops"])
        page = client.get("/admin/").content.decode()
        assert "No checkpoint meets the witness policy" in page and "Fail-open" in page


def test_a_retired_witness_is_asked_nothing(delegates, witnesses, recorded):
    fr = witnesses.start("FR", register=delegates)
    from consortium.governance.witnesses import witness_retire

    witness_retire(actor=delegates["fr"], name=fr["name"], reason="moved")
    grow(2)
    assert recorded == []


def test_the_beat_schedule_offers_the_latest_checkpoint_to_witnesses_that_missed_it(
    delegates, witnesses
):
    from consortium.celery import app
    from ledger.tasks import collect_cosignatures

    entry = app.conf.beat_schedule["collect-cosignatures"]
    assert entry["task"] == collect_cosignatures.name == "ledger.collect_cosignatures"
    fr = witnesses.start("FR", register=delegates)
    witnesses.stop("fr")
    cp = grow(2)
    assert not Cosignature.objects.filter(checkpoint=cp).exists()
    # Back online (same key, same state, same port): the scheduled run catches up.
    home = witnesses.tmp / "fr"
    proc, _ = start_witness(
        home,
        home / "witness-ed25519.key",
        [f"{log_signer().name} {log_vkey()}"],
        port=fr["addr"][1],
    )
    witnesses.running["fr"]["proc"] = proc
    assert collect_cosignatures.delay().get() == {fr["name"]: "cosigned"}
    assert Cosignature.objects.filter(checkpoint=cp, witness=fr["name"]).exists()
    # Nothing is missing any more: the next run asks no one.
    assert collect_cosignatures.delay().get() == {}


def test_the_admin_shows_the_witnesses_their_cosignatures_and_the_alarms(
    delegates, witnesses, client
):
    fr = witnesses.start("FR", register=delegates)
    de = witnesses.start("DE", register=delegates)
    ahead = services.tree_size() + 1000
    note = sign_note(
        Body(log_signer().name, ahead, b"\x01" * 32).body(), log_signer().note_signer()
    )
    assert add(de["addr"], f"old 0\n\n{note}".encode())[0] == 200
    adopt(policy(witnesses, 1))
    cp = grow(2)
    sign_in(client, delegates["ops"])
    page = client.get("/admin/ledger/witness/").content.decode()
    assert fr["name"] in page and de["name"] in page and "ahead of the log" in page
    page = client.get("/admin/ledger/witnessalarm/").content.decode()
    assert f"holds size {ahead}" in page
    page = client.get("/admin/ledger/cosignature/").content.decode()
    assert f"checkpoint at size {cp.tree_size}" in page
    assert "quorum members" in client.get("/admin/ledger/witnesspolicy/").content.decode()
    # Every admin page counts the alarms.
    assert "1 witness alarm</strong>" in client.get("/admin/").content.decode()
    # No one without a seat sees any of it.
    sign_in(client, delegates["newcomer"])
    assert client.get("/admin/ledger/witnessalarm/").status_code in (302, 403)


def test_the_database_refuses_to_rewrite_cosignatures_and_alarms(delegates, witnesses):
    from django.db import DatabaseError, connection, transaction

    fr = witnesses.start("FR", register=delegates)
    de = witnesses.start("DE", register=delegates)
    note = sign_note(
        Body(log_signer().name, services.tree_size() + 500, b"\x01" * 32).body(),
        log_signer().note_signer(),
    )
    assert add(de["addr"], f"old 0\n\n{note}".encode())[0] == 200
    grow(2)
    assert Cosignature.objects.filter(witness=fr["name"]).exists()
    assert WitnessAlarm.objects.filter(witness=de["name"]).exists()
    for sql in (
        "UPDATE ledger_cosignature SET line = ''",
        "DELETE FROM ledger_cosignature",
        "UPDATE ledger_witnessalarm SET detail = ''",
        "DELETE FROM ledger_witnessalarm",
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cur,
        ):
            cur.execute(sql)
    assert Cosignature.objects.exists() and WitnessAlarm.objects.exists()


def test_the_scheduled_run_raises_an_alarm_once_per_checkpoint(delegates, witnesses, recorded):
    from ledger.tasks import collect_cosignatures

    fr = witnesses.start("FR", register=delegates)
    note = sign_note(
        Body(log_signer().name, services.tree_size() + 900, b"\x01" * 32).body(),
        log_signer().note_signer(),
    )
    assert add(fr["addr"], f"old 0\n\n{note}".encode())[0] == 200
    grow(2)
    assert WitnessAlarm.objects.count() == 1
    recorded.clear()
    assert collect_cosignatures.delay().get() == {}
    assert recorded == [] and WitnessAlarm.objects.count() == 1
    # The witness holds a tree the log's database does not: kept outside the database
    # (ledger.published), it makes the log read-only rather than sign on beside it.
    size = services.tree_size()
    with pytest.raises(LogBehind, match=f"cosigned a tree of {size + 898:,} entries"):
        grow(1)
    assert services.tree_size() == size and WitnessAlarm.objects.count() == 1


def test_the_operator_collects_by_hand(delegates, witnesses, capsys):
    from django.core.management import CommandError, call_command

    fr = witnesses.start("FR", register=delegates)
    witnesses.stop("fr")
    cp = grow(2)
    home = witnesses.tmp / "fr"
    proc, _ = start_witness(
        home,
        home / "witness-ed25519.key",
        [f"{log_signer().name} {log_vkey()}"],
        port=fr["addr"][1],
    )
    witnesses.running["fr"]["proc"] = proc
    call_command("ledger", "cosign", "--missing")
    assert capsys.readouterr().out == f"size {cp.tree_size}: {fr['name']}: cosigned\n"
    call_command("ledger", "cosign", "--missing")
    assert capsys.readouterr().out == f"size {cp.tree_size}: no witness to ask\n"
    # A witness shown a fork of this very size: the command says so and fails.
    de = witnesses.start("DE", register=delegates)
    forked = sign_note(
        Body(log_signer().name, cp.tree_size, b"\x02" * 32).body(), log_signer().note_signer()
    )
    assert add(de["addr"], f"old 0\n\n{forked}".encode())[0] == 200
    with pytest.raises(CommandError, match="alarm"):
        call_command("ledger", "cosign")
    out = capsys.readouterr().out
    assert f"{de['name']}: alarm: " in out and f"{fr['name']}: cosigned" in out
