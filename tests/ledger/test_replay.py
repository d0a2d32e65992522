"""`ledger replay --check`: the projections are exactly what the entries imply."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from ledger import services
from ledger.keys import EntrySigner, log_signer
from ledger.replay import replay_check
from tests.steps.ledger import triggers_disabled

pytestmark = pytest.mark.slow


@pytest.fixture
def keys_history(committed_signer):
    """Registrations, a rotation and revocations: every path of the key projection."""
    log_key = log_signer()
    member = EntrySigner.generate("member-fr")
    services.key_register(
        signer=log_key, kind="member", owner="FR", name="fr", public_key=member.public_key
    )
    _, other = services.key_register(
        signer=log_key, kind="facility", owner="JUPITER", name="jupiter"
    )
    _, rotated = services.key_rotate(signer=other)
    services.key_revoke(signer=rotated, fingerprint=rotated.fingerprint, reason="retired")
    services.key_revoke(signer=log_key, fingerprint=member.fingerprint, reason="lost")
    return committed_signer


def test_replay_rebuilds_the_key_registry_exactly(keys_history, capsys):
    report = replay_check()
    assert report.ok, report.differences
    assert report.entries == 7
    call_command("ledger", "replay", "--check")
    out = capsys.readouterr().out
    assert out.startswith("OK: 7 entries replayed;") and "ledger.Key" in out


def test_replay_names_a_live_row_that_the_entries_do_not_imply(keys_history, capsys):
    with triggers_disabled() as cur:
        cur.execute(
            "UPDATE ledger_key SET owner = 'someone else' WHERE fingerprint = %s",
            [keys_history.fingerprint],
        )
    with pytest.raises(CommandError) as caught:
        call_command("ledger", "replay", "--check")
    assert caught.value.returncode == 1
    err = capsys.readouterr().err
    assert f"DIFF: ledger.Key {keys_history.fingerprint}: owner differ" in err


def test_an_applier_writing_to_the_live_database_during_replay_is_refused(keys_history):
    from django.db import connection

    from ledger.log import _appliers, applier

    def rogue(entry):
        with connection.cursor() as cur:  # the live connection, behind the router's back
            cur.execute("UPDATE ledger_loghead SET size = size WHERE id = 1")

    saved = _appliers.pop("key.revoked")
    applier("key.revoked")(rogue)
    try:
        with pytest.raises(RuntimeError, match="wrote to the live database"):
            replay_check()
    finally:
        _appliers["key.revoked"] = saved
