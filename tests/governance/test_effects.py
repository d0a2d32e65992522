"""What an accepted proposal's actions write is said once (``consortium.governance.effects``)
and read by both the applier's registry and the offline figures verifier."""

from __future__ import annotations

from consortium.audit.figures import proposals as offline
from consortium.governance.actions import ACTIONS
from consortium.governance.effects import EFFECTS, access_grant, grant_id, valuation_table

# Action types whose effect no figure of the report rests on (the release of a checkpoint
# gates downloads; a lost key is replaced through the key registry's own entries; the
# witness policy says which checkpoints the log serves).
NOT_IN_THE_FIGURES = {"checkpoint.release", "key.revoke", "witness.policy"}


def test_every_registered_action_type_says_what_it_writes_and_no_other_type_does():
    assert set(ACTIONS) == set(EFFECTS)


def test_the_registry_takes_its_flags_from_the_effects():
    for kind, action in ACTIONS.items():
        assert action.once_per == EFFECTS[kind].once_per
        assert action.applied_by_key_entries == EFFECTS[kind].applied_by_key_entries
        assert action.drops_open_proposals == EFFECTS[kind].drops_open_proposals


def test_the_offline_verifier_applies_every_type_the_figures_rest_on():
    assert set(offline.ACTIONS) == set(EFFECTS) - NOT_IN_THE_FIGURES
    assert all(not EFFECTS[kind].applied_by_key_entries for kind in offline.ACTIONS)


def test_an_adopted_table_and_a_grant_are_the_same_rows_on_both_sides():
    table = {"version": 2, "unit": "EUR", "weights": {"h100": "1"}, "unit_price": "2.5"}
    assert valuation_table({"type": "valuation.adopt", "table": table}, 40) == {
        "version": 2,
        "unit": "EUR",
        "weights": {"h100": "1"},
        "unit_price": "2.5",
        "data_price": None,
        "adopted_in": 40,
    }
    grant = {"type": "access.grant", "member": "SE", "scope": "full_weights", "reason": "r"}
    assert access_grant(grant, 41) == {
        "member": "SE",
        "scope": "full_weights",
        "checkpoints": None,
        "until": None,
        "reason": "r",
        "granted_in": 41,
    }
    assert grant_id("7f0c", 3) == "7f0c:3"
