"""The operator's commands: init, checkpoint, verifier-key, demo."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from ledger import checkpoints
from ledger.core.note import open_checkpoint, parse_verifier_key
from ledger.models import Entry, Key


def test_init_creates_the_log_key_and_publishes_the_first_checkpoint(db, capsys):
    call_command("ledger", "init")
    out = capsys.readouterr().out
    vkey = Key.objects.get(kind="log").verifier_key
    assert "Created the log key" in out and vkey in out
    cp = checkpoints.latest_checkpoint()
    assert open_checkpoint(cp.note, parse_verifier_key(vkey)).size == 1


def test_init_twice_changes_nothing(db, capsys):
    call_command("ledger", "init")
    call_command("ledger", "init")
    assert "already initialised" in capsys.readouterr().out
    assert Entry.objects.count() == 1


def test_checkpoint_prints_the_signed_note(log_key, capsys):
    call_command("ledger", "checkpoint")
    note = capsys.readouterr().out
    assert note.startswith("test.ledger.example\n1\n")
    assert "\n\n\u2014 test.ledger.example " in note


def test_checkpoint_without_a_log_key_is_a_clear_error(db):
    with pytest.raises(CommandError, match="ledger init"):
        call_command("ledger", "checkpoint")


def test_verifier_key_is_name_hex8_base64(log_key, capsys):
    call_command("ledger", "verifier-key")
    vkey = capsys.readouterr().out.strip()
    verifier = parse_verifier_key(vkey)
    assert verifier.name == "test.ledger.example"
    assert verifier.public_key == log_key.public_key
