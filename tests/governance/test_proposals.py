"""Proposals and votes: who may, when, and what an accepted proposal changes.

Personas: the secretariat (opens, decides), signatories of France, Germany and Italy
(open, vote), a recorder of France (may not vote).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model

from consortium.governance import proposals
from consortium.governance.changes import GovernanceError, secretariat_signer
from consortium.governance.members import member_record
from consortium.governance.models import Consortium, Member, Proposal
from consortium.governance.seats import seat_assign
from consortium.governance.votes import vote_cast
from ledger.services import Entry
from tests.personas import found_delegates
from tests.steps.governance import decide_after_deadline
from tests.steps.signin import sign_in

User = get_user_model()
SOON = timedelta(hours=1)


def _open(delegates, who="fr", actions=None, **kw):
    actions = actions or [{"type": "member.figures", "code": "FR", "figures": {"population": 69}}]
    return proposals.proposal_open(
        actor=delegates[who],
        title="Update France's figures",
        actions=actions,
        deadline=datetime.now(UTC) + SOON,
        **kw,
    )


def test_an_accepted_proposal_applies_its_actions(delegates):
    p = _open(delegates)
    assert p.state == "open" and set(p.eligible) == {"FR", "DE", "IT"}
    vote_cast(actor=delegates["fr"], proposal=p, choice="yes")
    vote_cast(actor=delegates["de"], proposal=p, choice="yes")
    decided = decide_after_deadline(p)
    assert decided.state == "accepted"
    assert decided.tally["yes"] == 2 and decided.tally["eligible"] == 3
    assert Member.objects.get(code="FR").figures == {"population": 69}


def test_without_a_majority_nothing_changes(delegates):
    p = _open(delegates)
    vote_cast(actor=delegates["fr"], proposal=p, choice="yes")
    vote_cast(actor=delegates["de"], proposal=p, choice="no")
    decided = decide_after_deadline(p)
    assert (decided.state, decided.tally["reason"]) == ("rejected", "the rule was not met")
    assert Member.objects.get(code="FR").figures == {"population": 68, "gni": "3000"}


def test_a_changed_vote_replaces_the_earlier_one(delegates):
    p = _open(delegates)
    vote_cast(actor=delegates["it"], proposal=p, choice="yes")
    vote = vote_cast(actor=delegates["it"], proposal=p, choice="no")
    assert vote.choice == "no" and p.votes.count() == 1
    assert Entry.objects.filter(kind="vote.cast").count() == 2  # both are on the record


def test_it_cannot_be_decided_before_its_deadline(delegates):
    p = _open(delegates)
    with pytest.raises(GovernanceError, match="not passed yet"):
        proposals.proposal_decide(proposal=p)


def test_a_vote_after_the_deadline_is_refused(delegates):
    p = proposals.proposal_open(
        actor=delegates["ops"],
        title="t",
        deadline=datetime.now(UTC) + timedelta(seconds=1),
        actions=[{"type": "member.suspend", "code": "IT"}],
    )
    time.sleep(1.1)
    before = Entry.objects.count()
    with pytest.raises(GovernanceError, match="deadline has passed"):
        vote_cast(actor=delegates["fr"], proposal=p, choice="yes")
    assert Entry.objects.count() == before


@pytest.mark.parametrize("who", ["rec_fr", "ops"])
def test_only_members_signatories_vote(delegates, who):
    p = _open(delegates)
    with pytest.raises(GovernanceError) as caught:
        vote_cast(actor=delegates[who], proposal=p, choice="yes")
    assert caught.value.status == 403


def test_a_suspended_member_neither_votes_nor_counts(delegates):
    suspend = _open(delegates, actions=[{"type": "member.suspend", "code": "DE"}])
    for who in ("fr", "it"):
        vote_cast(actor=delegates[who], proposal=suspend, choice="yes")
    assert decide_after_deadline(suspend).state == "accepted"
    assert Member.objects.get(code="DE").status == "suspended"
    later = _open(delegates)
    assert set(later.eligible) == {"FR", "IT"}
    with pytest.raises(GovernanceError, match="DE is suspended"):
        vote_cast(actor=delegates["de"], proposal=later, choice="no")


def test_a_rules_change_drops_the_other_open_proposals(delegates):
    other = _open(delegates)
    change = _open(
        delegates,
        who="ops",
        actions=[
            {
                "type": "rules.change",
                "rules": {"voting": {"default": {"kind": "unanimity"}}, "default": "default"},
            }
        ],
    )
    for who in ("fr", "de"):
        vote_cast(actor=delegates[who], proposal=change, choice="yes")
    assert decide_after_deadline(change).state == "accepted"
    other.refresh_from_db()
    assert other.state == "dropped"
    assert Consortium.objects.get().rules["voting"]["default"] == {"kind": "unanimity"}
    with pytest.raises(GovernanceError, match="dropped"):
        vote_cast(actor=delegates["it"], proposal=other, choice="yes")


def test_the_opener_or_the_secretariat_withdraws_a_proposal(delegates):
    p = _open(delegates)
    with pytest.raises(GovernanceError) as caught:
        proposals.proposal_withdraw(actor=delegates["de"], proposal=p)
    assert caught.value.status == 403
    proposals.proposal_withdraw(actor=delegates["fr"], proposal=p)
    p.refresh_from_db()
    assert p.state == "withdrawn"


@pytest.mark.parametrize(
    ("actions", "message"),
    [
        ([], "at least one action"),
        ([{"type": "member.annex", "code": "FR"}], "unknown action type"),
        ([{"type": "member.suspend", "code": "ES"}], "no member 'ES'"),
        ([{"type": "member.reinstate", "code": "FR"}], "FR is member"),
        ([{"type": "rules.change", "rules": {"voting": {}}}], "at least one voting rule"),
        ([{"type": "member.admit", "member": {"code": "XX"}}], "complete member record"),
        (
            [
                {
                    "type": "member.admit",
                    "member": {
                        "code": "XX",
                        "kind": "nation",
                        "name": "X",
                        "country": "XX",
                        "figures": {},
                    },
                }
            ],
            "not an ISO",
        ),
        ([{"type": "member.suspend", "code": ["FR"]}], "no member"),
        (
            [{"type": "member.suspend", "code": "IT"}, {"type": "member.suspend", "code": "IT"}],
            "IT is suspended",
        ),
        (
            [{"type": "member.figures", "code": "FR", "figures": {"population": "NaN"}}],
            "non-negative",
        ),
        (
            [{"type": "member.figures", "code": "FR", "figures": {"population": "-5"}}],
            "non-negative",
        ),
        (
            [
                {
                    "type": "rules.change",
                    "rules": {"voting": {"d": {"kind": "unanimity"}}, "default": ["d"]},
                }
            ],
            "default names",
        ),
    ],
)
def test_bad_proposals_are_refused_and_write_nothing(delegates, actions, message):
    before = Entry.objects.count()
    with pytest.raises(GovernanceError, match=message):
        proposals.proposal_open(
            actor=delegates["fr"], title="t", actions=actions, deadline=datetime.now(UTC) + SOON
        )
    assert Entry.objects.count() == before


def test_a_new_member_is_admitted_by_proposal(delegates):
    record = member_record(code="ES", figures={"population": 48})
    p = _open(delegates, actions=[{"type": "member.admit", "member": record}])
    for who in ("fr", "de"):
        vote_cast(actor=delegates[who], proposal=p, choice="yes")
    decide_after_deadline(p)
    assert Member.objects.get(code="ES").status == "member"


@pytest.mark.slow
def test_replay_rebuilds_proposals_and_votes(committed_db):
    from ledger.replay import replay_check

    delegates = found_delegates()
    fr, de = delegates["fr"], delegates["de"]
    p = proposals.proposal_open(
        actor=fr,
        title="t",
        actions=[{"type": "member.suspend", "code": "DE"}],
        deadline=datetime.now(UTC) + SOON,
    )
    vote_cast(actor=fr, proposal=p, choice="yes")
    vote_cast(actor=de, proposal=p, choice="no")
    vote_cast(actor=de, proposal=p, choice="abstain")
    decide_after_deadline(p)
    report = replay_check()
    assert report.ok, report.differences
    assert Proposal.objects.get().state == "rejected"


def test_due_proposals_are_decided_by_the_command(delegates, capsys):
    from django.core.management import call_command

    p = proposals.proposal_open(
        actor=delegates["ops"],
        title="t",
        deadline=datetime.now(UTC) + timedelta(seconds=1),
        actions=[{"type": "member.suspend", "code": "IT"}],
    )
    vote_cast(actor=delegates["fr"], proposal=p, choice="yes")
    vote_cast(actor=delegates["de"], proposal=p, choice="yes")
    time.sleep(1.1)
    call_command("consortium", "decide")
    assert "Decided 1 proposal(s)" in capsys.readouterr().out
    p.refresh_from_db()
    assert p.state == "accepted"
    assert Member.objects.get(code="IT").status == "suspended"


def test_signatories_vote_in_the_admin_and_see_what_awaits_them(client, delegates):
    p = _open(delegates)
    sign_in(client, delegates["de"])
    page = client.get("/admin/consortium/proposal/").content.decode()
    assert "awaiting your vote" in page
    r = client.post(f"/admin/consortium/proposal/{p.id}/vote/no/")
    assert r.status_code == 302
    assert p.votes.get(member_id="DE").choice == "no"
    sign_in(client, delegates["rec_fr"])
    assert client.post(f"/admin/consortium/proposal/{p.id}/vote/yes/").status_code == 403
    assert not p.votes.filter(member_id="FR").exists()


def test_two_admissions_of_one_member_are_refused_when_opened(delegates):
    record = member_record(code="ES", figures={"population": 48})
    twice = [{"type": "member.admit", "member": record}] * 2
    with pytest.raises(GovernanceError, match="ES is already member"):
        _open(delegates, actions=twice)


def test_a_member_lacking_the_figure_the_rules_weigh_by_is_refused(delegates):
    weighted = {
        "voting": {"w": {"kind": "weighted_majority", "weight": "population"}},
        "default": "w",
    }
    change = _open(delegates, who="ops", actions=[{"type": "rules.change", "rules": weighted}])
    for who in ("fr", "de"):
        vote_cast(actor=delegates[who], proposal=change, choice="yes")
    assert decide_after_deadline(change).state == "accepted"
    record = member_record(code="ES")
    with pytest.raises(GovernanceError, match="weighs votes by population, which ES lack"):
        _open(delegates, actions=[{"type": "member.admit", "member": record}])


def test_a_vote_reaching_the_log_after_the_deadline_does_not_erase_the_earlier_vote(delegates):
    from ledger import services as ledger
    from ledger.services import Key, hosted_signer

    p = proposals.proposal_open(
        actor=delegates["ops"],
        title="t",
        deadline=datetime.now(UTC) + timedelta(seconds=1),
        actions=[{"type": "member.suspend", "code": "IT"}],
    )
    vote_cast(actor=delegates["de"], proposal=p, choice="yes")
    time.sleep(1.1)
    # As if DE's re-vote had passed the service's check just before the deadline.
    de_key = hosted_signer(Key.objects.get(kind="member", owner="DE").fingerprint)
    ledger.entry_append(
        signer=de_key, kind="vote.cast", payload={"proposal": str(p.id), "choice": "no"}
    )
    assert p.votes.get(member_id="DE").choice == "yes"


def test_a_second_decision_entry_changes_nothing(delegates):
    from ledger import services as ledger

    p = _open(delegates, actions=[{"type": "member.suspend", "code": "IT"}])
    for who in ("fr", "de"):
        vote_cast(actor=delegates[who], proposal=p, choice="yes")
    decide_after_deadline(p)
    ledger.entry_append(
        signer=secretariat_signer(),
        kind="proposal.decided",
        payload={"proposal": str(p.id), "outcome": "rejected", "tally": {}},
    )
    p.refresh_from_db()
    assert p.state == "accepted"
    with pytest.raises(GovernanceError, match="accepted"):
        decide_after_deadline(p)


def test_due_proposals_are_decided_in_deadline_order(delegates):
    older = proposals.proposal_open(
        actor=delegates["fr"],
        title="older",
        deadline=datetime.now(UTC) + timedelta(seconds=1),
        actions=[{"type": "member.suspend", "code": "IT"}],
    )
    rules = {"voting": {"u": {"kind": "unanimity"}}, "default": "u"}
    newer = proposals.proposal_open(
        actor=delegates["ops"],
        title="rules",
        deadline=datetime.now(UTC) + timedelta(seconds=2),
        actions=[{"type": "rules.change", "rules": rules}],
    )
    for p in (older, newer):
        for who in ("fr", "de"):
            vote_cast(actor=delegates[who], proposal=p, choice="yes")
    time.sleep(2.1)
    assert [p.title for p in proposals.proposals_due()] == ["older", "rules"]
    from consortium.governance.tasks import decide_due_proposals

    decide_due_proposals()
    older.refresh_from_db()
    assert older.state == "accepted"


def test_an_admitted_member_gets_a_key_and_its_signatory_can_vote(delegates):
    record = member_record(code="ES", figures={"population": 48})
    p = _open(delegates, actions=[{"type": "member.admit", "member": record}])
    for who in ("fr", "de"):
        vote_cast(actor=delegates[who], proposal=p, choice="yes")
    decide_after_deadline(p)
    es = User.objects.create_user("es")
    seat_assign(actor=delegates["ops"], user=es, role="signatory", member="ES")
    later = _open(delegates)
    assert vote_cast(actor=es, proposal=later, choice="yes").member_id == "ES"
