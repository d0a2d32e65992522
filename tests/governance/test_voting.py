"""Voting rules as arithmetic: worked examples, and properties over random votes."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consortium.governance.voting import CHOICES, Rule, RuleError, tally

# Populations in millions, for readable examples.
SIX = {
    "NL": {"population": 18},
    "SE": {"population": 10},
    "PL": {"population": 37},
    "PT": {"population": 10},
    "FI": {"population": 6},
    "CZ": {"population": 11},
}
DOUBLE = Rule.parse(
    {
        "kind": "double_majority",
        "weight": "population",
        "members_threshold": "0.55",
        "weight_threshold": "0.65",
        "quorum": "0.5",
    }
)


def test_simple_majority_needs_more_than_half_of_all_members():
    rule = Rule.parse({"kind": "simple_majority", "quorum": "0.5"})
    three = tally(rule, SIX, {"NL": "yes", "SE": "yes", "PL": "yes"})
    assert three.quorum_met and not three.rule_met  # 3 of 6 is not more than half
    four = tally(rule, SIX, {"NL": "yes", "SE": "yes", "PL": "yes", "PT": "yes"})
    assert four.accepted


def test_weighted_majority_counts_the_weight_of_yes_votes():
    rule = Rule.parse({"kind": "weighted_majority", "weight": "population", "quorum": "0"})
    assert tally(rule, SIX, {"PL": "yes", "NL": "yes"}).accepted  # 55 of 92
    assert not tally(rule, SIX, {"PL": "yes"}).accepted  # 37 of 92


def test_double_majority_needs_both_members_and_weight():
    # 4 of 6 members (67%) but 37 of 92 weight without Poland and the Netherlands.
    small = tally(DOUBLE, SIX, {"SE": "yes", "PT": "yes", "FI": "yes", "CZ": "yes"})
    assert small.yes == 4 and not small.rule_met
    # Poland and the Netherlands alone carry 60% of the weight but are 2 of 6 members.
    big = tally(DOUBLE, SIX, {"PL": "yes", "NL": "yes", "SE": "no", "PT": "no"})
    assert not big.rule_met
    both = tally(DOUBLE, SIX, {"PL": "yes", "NL": "yes", "SE": "yes", "CZ": "yes"})
    assert both.accepted and both.yes_weight == Decimal(76)


def test_unanimity_is_blocked_by_a_no_but_not_by_an_explicit_abstention():
    rule = Rule.parse({"kind": "unanimity"})
    everyone = dict.fromkeys(SIX, "yes")
    assert tally(rule, SIX, everyone).accepted
    assert tally(rule, SIX, {**everyone, "FI": "abstain"}).accepted
    assert not tally(rule, SIX, {**everyone, "FI": "no"}).accepted
    silent = dict(everyone)
    del silent["FI"]
    assert not tally(rule, SIX, silent).accepted  # everyone must vote


def test_the_quorum_counts_abstentions():
    rule = Rule.parse({"kind": "simple_majority", "quorum": "1"})
    votes = {"NL": "yes", "SE": "yes", "PL": "yes", "PT": "yes", "FI": "abstain"}
    assert not tally(rule, SIX, votes).quorum_met
    assert tally(rule, SIX, {**votes, "CZ": "abstain"}).accepted


def test_votes_of_members_not_eligible_are_not_counted():
    rule = Rule.parse({"kind": "simple_majority"})
    t = tally(rule, SIX, {"NL": "yes", "SE": "yes", "PL": "yes", "DE": "yes", "FR": "yes"})
    assert (t.voted, t.yes, t.rule_met) == (3, 3, False)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"kind": "plurality"}, "rule kind"),
        ({"kind": "weighted_majority"}, "weight"),
        (
            {
                "kind": "double_majority",
                "weight": "population",
                "members_threshold": 0.55,
                "weight_threshold": "0.65",
            },
            "decimal string",
        ),
        (
            {
                "kind": "double_majority",
                "weight": "population",
                "members_threshold": "1.5",
                "weight_threshold": "0.65",
            },
            "between 0 and 1",
        ),
        ({"kind": "simple_majority", "quorum": "half"}, "decimal string"),
        ({"kind": "simple_majority", "weight": "population"}, "unknown rule fields"),
        ("majority", "an object"),
    ],
)
def test_a_malformed_rule_is_refused(spec, message):
    with pytest.raises(RuleError, match=message):
        Rule.parse(spec)


def test_a_member_without_the_weighing_figure_is_an_error_not_a_zero():
    rule = Rule.parse({"kind": "weighted_majority", "weight": "gdp"})
    with pytest.raises(RuleError, match="no gdp figure"):
        tally(rule, SIX, {"NL": "yes"})


# --- properties ------------------------------------------------------------------------------

codes = st.lists(
    st.sampled_from(["AT", "BE", "CZ", "DK", "FI", "IE", "NL", "PL", "PT", "SE"]),
    min_size=1,
    max_size=10,
    unique=True,
)
rules = st.one_of(
    st.builds(
        lambda q: Rule.parse({"kind": "simple_majority", "quorum": q}),
        st.sampled_from(["0", "0.3", "0.5", "1"]),
    ),
    st.builds(
        lambda q: Rule.parse({"kind": "weighted_majority", "weight": "population", "quorum": q}),
        st.sampled_from(["0", "0.5"]),
    ),
    st.builds(
        lambda m, w, q: Rule.parse(
            {
                "kind": "double_majority",
                "weight": "population",
                "members_threshold": m,
                "weight_threshold": w,
                "quorum": q,
            }
        ),
        st.sampled_from(["0.5", "0.55", "0.75"]),
        st.sampled_from(["0.5", "0.65", "0.9"]),
        st.sampled_from(["0", "0.5"]),
    ),
    st.just(Rule.parse({"kind": "unanimity"})),
)


@st.composite
def electorates(draw):
    members = draw(codes)
    eligible = {
        c: {"population": draw(st.integers(min_value=1, max_value=100_000_000))} for c in members
    }
    votes = {c: draw(st.sampled_from(CHOICES)) for c in members if draw(st.booleans())}
    return eligible, votes


@settings(max_examples=300, deadline=None)
@given(rules, electorates(), st.data())
def test_adding_a_yes_vote_never_turns_accepted_into_rejected(rule, electorate, data):
    eligible, votes = electorate
    before = tally(rule, eligible, votes)
    member = data.draw(st.sampled_from(sorted(eligible)))
    after = tally(rule, eligible, {**votes, member: "yes"})
    if before.accepted:
        assert after.accepted
    assert after.yes >= before.yes and after.yes_weight >= before.yes_weight


@settings(max_examples=200, deadline=None)
@given(electorates())
def test_under_unanimity_a_single_no_always_rejects(electorate):
    eligible, votes = electorate
    member = sorted(eligible)[0]
    assert not tally(Rule.parse({"kind": "unanimity"}), eligible, {**votes, member: "no"}).accepted


@settings(max_examples=200, deadline=None)
@given(rules, electorates())
def test_nothing_is_accepted_without_a_yes_vote(rule, electorate):
    eligible, votes = electorate
    no_yes = {c: v for c, v in votes.items() if v != "yes"}
    assert not tally(rule, eligible, no_yes).accepted
