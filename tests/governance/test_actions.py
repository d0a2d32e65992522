"""The registry of proposal actions: every type the proposals name is registered once,
with its flags, and says what it does in words (on the admin's proposal page too).

Personas: the secretariat and signatories of France, Germany and Italy (``delegates``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from consortium.governance import proposals
from consortium.governance.actions import ACTIONS, describe
from consortium.governance.changes import GovernanceError
from consortium.governance.members import member_record
from tests import worlds
from tests.steps.signin import sign_in

delegates = worlds.shared("delegates")

DIGEST = "ab" * 32
EXAMPLES = {
    "member.admit": {"member": member_record(code="AT", figures={"population": 9})},
    "member.suspend": {"code": "IT"},
    "member.reinstate": {"code": "IT"},
    "member.withdraw": {"code": "IT"},
    "member.figures": {"code": "FR", "figures": {"population": 69}},
    "rules.change": {
        "rules": {"voting": {"majority": {"kind": "simple_majority"}}, "default": "majority"}
    },
    "valuation.adopt": {"table": {"version": 2, "unit": "H100-hour", "weights": {"h100": "1"}}},
    "access.grant": {"member": "IT", "scope": "evaluation", "until": "2099-12-31", "reason": "r"},
    "access.revoke": {"grant": "g:0", "reason": "r"},
    "checkpoint.release": {"checkpoint": DIGEST, "note": "passed"},
    "agreement.terminate": {"agreement": "0b2f7c57-5b2c-4d7c-9d0a-6f1f1d8d1c11", "reason": "r"},
    "key.revoke": {"fingerprint": "cd" * 32, "reason": "lost"},
    "witness.policy": {"policy": "witness w1 w1+01020304+BAAA\nquorum w1\n"},
}


def test_every_action_type_is_registered_once_with_its_flags():
    assert set(ACTIONS) == set(EXAMPLES)
    assert {t for t, a in ACTIONS.items() if a.once_per} == {
        "valuation.adopt",
        "checkpoint.release",
        "agreement.terminate",
        "key.revoke",
        "access.revoke",
        "witness.policy",
    }
    assert ACTIONS["checkpoint.release"].once_per == "checkpoint"
    assert ACTIONS["valuation.adopt"].once_per == "proposal"
    assert [t for t, a in ACTIONS.items() if a.applied_by_key_entries] == ["key.revoke"]
    assert [t for t, a in ACTIONS.items() if a.drops_open_proposals] == ["rules.change"]


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_every_action_says_what_it_does(kind):
    words = describe({"type": kind, **EXAMPLES[kind]})
    assert words and not words.startswith("{")


def test_an_action_of_no_known_type_is_shown_as_written():
    assert (
        describe({"type": "member.crown", "code": "FR"}) == "{'type': 'member.crown', 'code': 'FR'}"
    )
    assert describe({"type": "member.suspend"}) == "{'type': 'member.suspend'}"


def test_a_type_once_per_value_is_refused_twice_in_one_proposal(delegates):
    twice = [{"type": "checkpoint.release", "checkpoint": DIGEST}] * 2
    with pytest.raises(GovernanceError, match=r"checkpoint\.release twice for the same checkpoint"):
        proposals.proposal_open(
            actor=delegates["ops"],
            title="t",
            actions=twice,
            deadline=datetime.now(UTC) + timedelta(hours=1),
        )


def test_the_admin_shows_what_a_proposal_does(client, delegates):
    p = proposals.proposal_open(
        actor=delegates["fr"],
        title="Suspend Italy",
        actions=[{"type": "member.suspend", "code": "IT"}],
        deadline=datetime.now(UTC) + timedelta(hours=1),
    )
    sign_in(client, delegates["de"])
    page = client.get(f"/admin/consortium/proposal/{p.id}/change/").content.decode()
    assert "What it does if accepted" in page and "<ol><li>Suspend IT</li></ol>" in page
