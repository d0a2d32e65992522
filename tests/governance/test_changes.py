"""The shape every governance change shares: an Idempotency-Key's entry id and replay,
and refusals told to a person instead of raised.

Personas: the secretariat and a signatory of France (``delegates``).
"""

from __future__ import annotations

import pytest
from django.core.management.base import CommandError

from consortium.governance.changes import GovernanceError, idempotency, refusals
from consortium.governance.seats import seat_vacate
from consortium.governance.selectors import seat_of
from ledger.services import LedgerError
from tests import worlds

delegates = worlds.shared("delegates")


def test_without_a_key_or_at_the_console_a_change_has_no_idempotency(delegates):
    assert idempotency(delegates["fr"], None).entry_id is None
    assert idempotency(None, "retry-1").entry_id is None
    assert idempotency(None, "retry-1").earlier("seat.vacated", {}) is None
    assert idempotency(None, None).new_id() != idempotency(None, None).new_id()


def test_a_key_fixes_the_entry_id_and_the_new_object_id(delegates):
    one, again = idempotency(delegates["fr"], "k-1"), idempotency(delegates["fr"], "k-1")
    assert one.entry_id == again.entry_id == f"idem-{delegates['fr'].pk}-k-1"
    assert one.new_id() == again.new_id()
    assert idempotency(delegates["ops"], "k-1").new_id() != one.new_id()
    with pytest.raises(GovernanceError, match="Idempotency-Key is 1-64"):
        idempotency(delegates["fr"], "no spaces")


def test_a_retry_finds_its_entry_and_another_request_is_a_conflict(delegates):
    seat = seat_of(delegates["rec_fr"])
    seat_vacate(actor=delegates["ops"], seat=seat, reason="gone", idempotency_key="v-1")
    idem = idempotency(delegates["ops"], "v-1")
    payload = {"seat": str(seat.id), "reason": "gone"}
    assert idem.earlier("seat.vacated", payload).kind == "seat.vacated"
    assert idem.entry().payload == payload
    with pytest.raises(GovernanceError, match="used for another vote") as refused:
        idem.earlier("seat.vacated", {**payload, "reason": "other"}, what="vote")
    assert refused.value.status == 409


def test_refusals_are_told_and_end_the_block():
    told = []
    with refusals(told.append):
        raise GovernanceError("not allowed", 403)
    with refusals(told.append):
        raise LedgerError("bad key")
    assert told == ["not allowed", "bad key"]
    with pytest.raises(CommandError, match="not allowed"), refusals(CommandError):
        raise GovernanceError("not allowed")
    with pytest.raises(ValueError), refusals(told.append):
        raise ValueError("not a refusal")
