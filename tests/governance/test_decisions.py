"""Proposal actions beyond membership and rules: valuation tables, access exceptions,
checkpoint releases and lost keys; each checked when opened and applied on acceptance."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from consortium.governance import proposals
from consortium.governance.changes import GovernanceError, acting_signer, secretariat_signer
from consortium.governance.models import AccessGrant, Member, ReleaseApproval, ValuationTable
from consortium.governance.votes import vote_cast
from ledger import services
from ledger.keys import EntrySigner
from ledger.services import Entry, Key, log_signer, parse_time
from tests import worlds
from tests.steps.governance import decide_after_deadline

# Every test here starts from the same world: built once for the module (tests/worlds.py).
delegates = worlds.shared("delegates")

DIGEST = "ab" * 32
TABLE = {"version": 1, "unit": "H100-hour", "weights": {"h100": "1", "a100": "0.45"}}


def decide(delegates, actions, title="A decision"):
    """Open, carry (France and Germany vote yes) and decide a proposal."""
    p = proposals.proposal_open(
        actor=delegates["ops"],
        title=title,
        actions=actions,
        deadline=datetime.now(UTC) + timedelta(hours=1),
    )
    for who in ("fr", "de"):
        vote_cast(actor=delegates[who], proposal=p, choice="yes")
    return decide_after_deadline(p)


def test_a_valuation_table_is_adopted_by_vote(delegates):
    p = decide(delegates, [{"type": "valuation.adopt", "table": TABLE}])
    assert p.state == "accepted"
    table = ValuationTable.objects.get()
    assert (table.version, table.weights, table.adopted_in) == (1, TABLE["weights"], p.closed_in)
    with pytest.raises(GovernanceError, match="version 1 is taken"):
        decide(delegates, [{"type": "valuation.adopt", "table": TABLE}])


def test_access_exceptions_are_granted_and_revoked_by_vote(delegates):
    grant = {
        "type": "access.grant",
        "member": "IT",
        "scope": "evaluation",
        "checkpoints": [DIGEST],
        "until": "2099-12-31",
        "reason": "safety evaluation",
    }
    p = decide(delegates, [grant])
    g = AccessGrant.objects.get()
    assert (g.id, g.member_id, g.scope, g.checkpoints) == (
        f"{p.id}:0",
        "IT",
        "evaluation",
        [DIGEST],
    )
    decide(delegates, [{"type": "access.revoke", "grant": g.id, "reason": "done"}])
    g.refresh_from_db()
    assert g.revoked_in is not None
    with pytest.raises(GovernanceError, match="no standing grant"):
        decide(delegates, [{"type": "access.revoke", "grant": g.id, "reason": "again"}])


def test_a_checkpoint_release_is_approved_once(delegates):
    decide(delegates, [{"type": "checkpoint.release", "checkpoint": DIGEST, "note": "v1"}])
    assert ReleaseApproval.objects.get().checkpoint == DIGEST
    with pytest.raises(GovernanceError, match="approved already"):
        decide(delegates, [{"type": "checkpoint.release", "checkpoint": DIGEST}])


def test_a_lost_key_is_revoked_by_vote_and_the_member_gets_a_fresh_one(delegates):
    lost = Key.objects.get(kind="member", owner="IT", revoked_at__isnull=True)
    decide(
        delegates,
        [
            {
                "type": "key.revoke",
                "fingerprint": lost.fingerprint,
                "reason": "the HSM was destroyed",
            }
        ],
    )
    lost.refresh_from_db()
    assert lost.revoked_at is not None
    fresh = Key.objects.get(kind="member", owner="IT", revoked_at__isnull=True)
    assert fresh.custody == "hosted" and fresh.fingerprint != lost.fingerprint
    assert acting_signer(delegates["it"])[0].fingerprint == fresh.fingerprint
    last = list(Entry.objects.order_by("-index").values_list("kind", flat=True)[:3])
    assert last == ["key.registered", "key.revoked", "proposal.decided"]


def test_a_lost_external_key_is_revoked_too(delegates):
    ext = EntrySigner.generate("it-hsm")
    services.key_register(
        signer=log_signer(), kind="member", owner="IT", name="it-hsm", public_key=ext.public_key
    )
    decide(delegates, [{"type": "key.revoke", "fingerprint": ext.fingerprint, "reason": "lost"}])
    assert Key.objects.get(fingerprint=ext.fingerprint).revoked_at is not None


@pytest.mark.parametrize(
    ("action", "message"),
    [
        (
            {"type": "valuation.adopt", "table": {**TABLE, "weights": {}}},
            "at least one accelerator",
        ),
        (
            {"type": "valuation.adopt", "table": {**TABLE, "weights": {"H100!": "1"}}},
            "not an accelerator type",
        ),
        (
            {"type": "access.grant", "member": "XX", "scope": "evaluation", "reason": "r"},
            "no member 'XX'",
        ),
        (
            {"type": "access.grant", "member": "IT", "scope": "everything", "reason": "r"},
            "scope is one of",
        ),
        (
            {"type": "access.grant", "member": "IT", "scope": "evaluation", "reason": ""},
            "give a reason",
        ),
        (
            {
                "type": "access.grant",
                "member": "IT",
                "scope": "evaluation",
                "reason": "r",
                "until": "2001-01-01",
            },
            "until has passed",
        ),
        (
            {
                "type": "access.grant",
                "member": "IT",
                "scope": "evaluation",
                "reason": "r",
                "checkpoints": ["nothex"],
            },
            "manifest SHA-256 digests",
        ),
        (
            {
                "type": "access.grant",
                "member": "IT",
                "scope": "evaluation",
                "reason": "r",
                "extra": 1,
            },
            "access.grant is {type, member, scope, reason, checkpoints?, until?}",
        ),
        ({"type": "checkpoint.release", "checkpoint": "AB" * 32}, "manifest's SHA-256"),
        ({"type": "agreement.terminate", "agreement": "nope", "reason": "r"}, "no agreement"),
        ({"type": "key.revoke", "fingerprint": "0" * 64, "reason": "r"}, "no member key"),
    ],
)
def test_bad_actions_are_refused_when_the_proposal_opens(delegates, action, message):
    before = Entry.objects.count()
    with pytest.raises(GovernanceError, match=re.escape(message)):
        proposals.proposal_open(
            actor=delegates["ops"],
            title="t",
            actions=[action],
            deadline=datetime.now(UTC) + timedelta(hours=1),
        )
    assert Entry.objects.count() == before


def test_the_same_key_is_not_revoked_twice_in_one_proposal(delegates):
    fp = Key.objects.get(kind="member", owner="IT").fingerprint
    action = {"type": "key.revoke", "fingerprint": fp, "reason": "lost"}
    with pytest.raises(GovernanceError, match=r"key\.revoke twice for the same fingerprint"):
        decide(delegates, [action, action])


def test_a_proposal_without_a_quorum_expires(delegates):
    p = proposals.proposal_open(
        actor=delegates["ops"],
        title="Quiet",
        deadline=datetime.now(UTC) + timedelta(hours=1),
        actions=[{"type": "member.suspend", "code": "IT"}],
    )
    vote_cast(actor=delegates["fr"], proposal=p, choice="yes")  # 1 of 3: no quorum
    p = decide_after_deadline(p)
    assert (p.state, p.tally["reason"]) == ("expired", "no quorum by the deadline")
    assert Member.objects.get(code="IT").status == "member"


def test_decision_entries_that_break_the_rules_change_nothing(delegates):
    p = proposals.proposal_open(
        actor=delegates["ops"],
        title="Suspend Italy",
        deadline=datetime.now(UTC) + timedelta(hours=1),
        actions=[{"type": "member.suspend", "code": "IT"}],
    )
    vote_cast(actor=delegates["fr"], proposal=p, choice="no")
    vote_cast(actor=delegates["de"], proposal=p, choice="no")
    accepted = {"proposal": str(p.id), "outcome": "accepted", "tally": {"reason": ""}}
    # Before the deadline, after it against the votes, or by a member's key: inert.
    services.entry_append(signer=secretariat_signer(), kind="proposal.decided", payload=accepted)
    with time_machine.travel(parse_time(p.deadline) + timedelta(minutes=1)):
        services.entry_append(
            signer=secretariat_signer(), kind="proposal.decided", payload=accepted
        )
        services.entry_append(
            signer=acting_signer(delegates["fr"])[0],
            kind="proposal.decided",
            payload={**accepted, "outcome": "rejected"},
        )
    p.refresh_from_db()
    assert p.state == "open"
    assert Member.objects.get(code="IT").status == "member"
    assert decide_after_deadline(p).state == "rejected"
