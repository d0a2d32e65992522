"""The proposal's page in the admin: what it does, the rule, the tally so far, and voting
from it after a confirmation.

France, Germany and Italy (population 68, 84 and 59: 211 in all) decide under a double
majority: at least 60% of the members (2 of 3) voting yes, carrying at least 65% of the
population (137.15 of 211), with half of the members voting. Their signatories (fr, de,
it) vote for their own member only; recorders and the secretariat vote for no one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.urls import reverse

from consortium.governance import proposals
from consortium.governance.admin import ProposalAdmin
from consortium.governance.changes import member_hosted_key
from consortium.governance.models import Vote
from consortium.governance.votes import vote_cast
from consortium.web import stepup
from ledger.services import Entry
from tests import worlds
from tests.steps.governance import decide_after_deadline
from tests.steps.signin import sign_in

delegates = worlds.shared("delegates")

CHANGELIST = "/admin/consortium/proposal/"
DOUBLE = {
    "kind": "double_majority",
    "quorum": "0.5",
    "weight": "population",
    "members_threshold": "0.6",
    "weight_threshold": "0.65",
}


def adopt_the_double_majority(delegates):
    change = proposals.proposal_open(
        actor=delegates["ops"],
        title="Rules",
        deadline=datetime.now(UTC) + timedelta(hours=1),
        actions=[
            {
                "type": "rules.change",
                "rules": {
                    "voting": {"default": {"kind": "simple_majority"}, "double": DOUBLE},
                    "default": "default",
                },
            }
        ],
    )
    for who in ("fr", "de"):
        vote_cast(actor=delegates[who], proposal=change, choice="yes")
    assert decide_after_deadline(change).state == "accepted"


def suspend_italy(delegates):
    """Under the double majority: suspend Italy, open for two days."""
    adopt_the_double_majority(delegates)
    return proposals.proposal_open(
        actor=delegates["ops"],
        title="Suspend Italy",
        rule="double",
        deadline=datetime.now(UTC) + timedelta(days=2),
        actions=[{"type": "member.suspend", "code": "IT"}],
    )


def page(p):
    return f"{CHANGELIST}{p.id}/change/"


def vote_url(p, choice):
    return f"{CHANGELIST}{p.id}/vote/{choice}/"


def test_the_page_shows_what_it_does_the_rule_and_the_tally(client, delegates):
    p = suspend_italy(delegates)
    sign_in(client, delegates["rec_de"])
    body = client.get(page(p)).content.decode()
    assert "Suspend Italy" in body and "Double majority" in body
    assert "IT" in body and "suspend" in body.lower()
    # Each member's weight, and no vote yet.
    for row in ("France (FR)</td><td>68", "Germany (DE)</td><td>84", "Italy (IT)</td><td>59"):
        assert row in body
    assert body.count("not yet") == 3
    assert "<th>211</th>" in body
    assert "2 of 3 members" in body  # the quorum
    assert "137.15 of 211" in body  # 65% of the weight
    assert "expired: no quorum" in body  # if nobody votes
    assert "1 d 23 h left" in body or "2 d 0 h left" in body
    # The deadline for people: no seconds, no microseconds, no ISO form.
    assert p.deadline not in body and " UTC" in body
    # A recorder votes for no one: no buttons.
    assert vote_url(p, "yes") not in body


def test_the_tally_follows_the_votes(client, delegates):
    p = suspend_italy(delegates)
    vote_cast(actor=delegates["fr"], proposal=p, choice="yes")
    sign_in(client, delegates["ops"])
    body = client.get(page(p)).content.decode()
    assert "68 (32.23%)" in body
    assert "1 yes, 0 no, 0 abstain (1 of 3 voted)" in body
    assert "expired: no quorum" in body
    vote_cast(actor=delegates["it"], proposal=p, choice="yes")
    body = client.get(page(p)).content.decode()
    # 2 of 3 members say yes (enough), carrying 127 of 211 (60.19%: short of 65%).
    assert "127 (60.19%)" in body
    assert "rejected: the rule is not met" in body
    assert body.count('class="met"') == 2 and body.count('class="not-met"') == 1
    vote_cast(actor=delegates["de"], proposal=p, choice="yes")
    body = client.get(page(p)).content.decode()
    assert "211 (100%)" in body and "accepted" in body


def test_vote_buttons_show_only_for_an_eligible_signatory_that_has_not_voted(client, delegates):
    p = suspend_italy(delegates)
    vote_cast(actor=delegates["de"], proposal=p, choice="no")
    for who, sees in (("fr", True), ("it", True), ("de", False), ("rec_fr", False), ("ops", False)):
        sign_in(client, delegates[who])
        body = client.get(page(p)).content.decode()
        assert all((vote_url(p, c) in body) is sees for c in ("yes", "no", "abstain")), who
    sign_in(client, delegates["de"])
    assert "DE voted no" in client.get(page(p)).content.decode()


def test_the_confirmation_says_for_whom_and_under_which_key(client, delegates):
    p = suspend_italy(delegates)
    sign_in(client, delegates["fr"])
    body = client.get(vote_url(p, "yes")).content.decode()
    assert "You are voting <strong>YES</strong> on behalf of <strong>France</strong> on:" in body
    assert "Suspend Italy" in body
    assert "This vote goes on the ledger under France" in body
    assert member_hosted_key("FR").fingerprint in body
    assert not Vote.objects.filter(proposal=p).exists()


def test_confirming_records_the_vote_and_a_second_vote_is_refused(client, delegates):
    p = suspend_italy(delegates)
    sign_in(client, delegates["fr"])
    before = Entry.objects.count()
    done = client.post(vote_url(p, "no"), follow=True)
    vote = Vote.objects.get(proposal=p, member_id="FR")
    assert vote.choice == "no" and Entry.objects.count() == before + 1
    assert Entry.objects.get(index=vote.cast_in).kind == "vote.cast"
    body = done.content.decode()
    assert f"ledger entry {vote.cast_in}" in body and "FR voted no" in body
    again = client.post(vote_url(p, "yes"), follow=True)
    assert Entry.objects.count() == before + 1
    assert Vote.objects.get(proposal=p, member_id="FR").choice == "no"
    assert "cannot vote on this proposal now" in again.content.decode()


def test_another_members_delegate_is_refused_and_nothing_is_written(client, delegates):
    p = suspend_italy(delegates)
    before = Entry.objects.count()
    for who in ("rec_fr", "ops", "aud"):
        sign_in(client, delegates[who])
        assert client.get(vote_url(p, "yes")).status_code == 403, who
        assert client.post(vote_url(p, "yes")).status_code == 403, who
    assert Entry.objects.count() == before


def test_no_vote_is_cast_from_the_list(client, delegates):
    p = suspend_italy(delegates)
    sign_in(client, delegates["de"])
    body = client.get(CHANGELIST).content.decode()
    assert "awaiting your vote" in body and page(p) in body
    before = Entry.objects.count()
    client.post(CHANGELIST, {"action": "vote_yes", "_selected_action": [str(p.id)]})
    assert Entry.objects.count() == before


def test_without_a_recent_second_factor_the_vote_view_asks_for_one(client, delegates):
    # When the step-up page (URL name "stepup") is not installed, the wrapper fails to
    # name it: either way the view itself never runs and nothing is cast.
    p = suspend_italy(delegates)
    sign_in(client, delegates["fr"], stepped_up=False)
    r = client.post(vote_url(p, "yes"))
    assert r.status_code == 302
    assert r["Location"].startswith(reverse("stepup") + "?next=")
    assert not Vote.objects.filter(proposal=p).exists()


def test_voting_is_wrapped_in_the_step_up_contract():
    wrapper = stepup.stepup_required(lambda request: None).__code__
    assert ProposalAdmin.vote_view.__code__ is wrapper
    assert ProposalAdmin.vote_view.__wrapped__.__name__ == "vote_view"
