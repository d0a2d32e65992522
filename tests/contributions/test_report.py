"""The cost-share report: value delivered by type against each party's share."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from consortium.governance import agreements, proposals
from consortium.governance.documents import document_store
from consortium.governance.votes import vote_cast
from contributions.compute import sacct_import
from contributions.costshare import capped
from contributions.disputes import contribution_dispute, dispute_resolve
from contributions.report import ReportError, cost_share_report
from tests.steps.contributions import JOBS, TODAY, VALUATION, deliver, treaty
from tests.steps.governance import decide_after_deadline


def figures(r):
    return {
        m["member"]: (m["delivered"]["total"], m["obligation"], m["ratio"], m["status"])
        for m in r.as_dict()["members"]
    }


def test_value_delivered_against_each_share(lumi):
    a = treaty(lumi)
    deliver(lumi)
    r = cost_share_report(a)
    d = r.as_dict()
    # Valued by the agreement's own table (no table adopted by vote yet).
    assert d["total_delivered"] == "133.80"
    assert d["valuation_tables"] == [{"version": 1, "adopted_in": None}]
    assert figures(r) == {
        "FI": ("12.80", "26.76", "0.478", "behind"),
        "SE": ("91.00", "40.14", "2.267", "on track"),
        "NL": ("30.00", "66.90", "0.448", "behind"),
    }
    se = next(m for m in d["members"] if m["member"] == "SE")
    assert se["delivered"] == {
        "compute": "4.00",
        "data": "0.00",
        "funds": "87.00",
        "total": "91.00",
    }
    assert se["gpu_hours"] == {"h100": "2.000000"} and se["funds_paid"] == {"SEK": "1000"}
    assert r.csv_rows()[0][:4] == ["member", "name", "share", "obligation"]


def test_a_disputed_contribution_counts_shown_as_disputed_until_upheld(lumi):
    a = treaty(lumi)
    paid = deliver(lumi)
    d = contribution_dispute(actor=lumi["people"]["sig_fi"], contribution=paid, reason="?")
    nl = next(m for m in cost_share_report(a).as_dict()["members"] if m["member"] == "NL")
    assert (nl["delivered"]["total"], nl["held"], nl["disputed"]) == ("30.00", "0.00", "20.00")
    dispute_resolve(actor=lumi["people"]["ops"], dispute=d, outcome="upheld", resolution="reversed")
    nl = next(m for m in cost_share_report(a).as_dict()["members"] if m["member"] == "NL")
    assert (nl["delivered"]["total"], nl["held"], nl["disputed"]) == ("10.00", "0.00", "0.00")


def test_thresholds_come_from_the_terms(lumi):
    a = treaty(lumi, balance_thresholds={"behind": "0.9", "critical": "0.46"})
    deliver(lumi)
    statuses = {m: f[3] for m, f in figures(cost_share_report(a)).items()}
    assert statuses == {"FI": "behind", "SE": "on track", "NL": "critically behind"}


def test_a_table_adopted_by_vote_values_what_is_recorded_after_it(lumi):
    a = treaty(lumi)
    deliver(lumi)
    people = lumi["people"]
    table = {**VALUATION, "version": 2, "weights": {"mi250x": "0.5", "h100": "1"}}
    p = proposals.proposal_open(
        actor=people["ops"],
        title="Table 2",
        actions=[{"type": "valuation.adopt", "table": table}],
        deadline=datetime.now(UTC) + timedelta(hours=1),
    )
    for who in ("sig_fi", "sig_se", "sig_nl"):
        vote_cast(actor=people[who], proposal=p, choice="yes")
    decide_after_deadline(p)
    before = figures(cost_share_report(a))["FI"][0]
    sacct_import(
        actor=people["rec_fi"],
        facility=lumi["facility"],
        data=JOBS.replace(b"|1|lumi|", b"|91|lumi|"),
    )
    after = cost_share_report(a)
    assert before == "12.80"
    # The new 16 GPU-hours are valued at 0.5: 8 reference hours, 16.00 EUR.
    assert figures(after)["FI"][0] == "28.80"
    assert [t["version"] for t in after.as_dict()["valuation_tables"]] == [1, 2]


def test_a_period_counts_only_what_was_delivered_in_it(lumi):
    a = treaty(lumi)
    deliver(lumi)
    from datetime import date

    march = cost_share_report(a, start=date(2026, 3, 1), end=date(2026, 3, 31))
    assert march.as_dict()["total_delivered"] == "16.80"  # the compute of March only
    today = cost_share_report(a, start=TODAY, end=TODAY)
    assert today.as_dict()["total_delivered"] == "117.00"  # the funds and data of today


def test_capped_shares_pass_the_excess_to_the_others():
    shares = capped({"A": Decimal(60), "B": Decimal(30), "C": Decimal(10)}, Decimal("0.5"))
    assert shares["A"] == Decimal("0.5")
    assert shares["B"] == Decimal("0.375") and shares["C"] == Decimal("0.125")
    assert sum(shares.values()) == 1


def test_pledges_are_the_obligation(lumi):
    a = treaty(
        lumi, sharing={"method": "pledged", "pledges": {"FI": "10", "SE": "50", "NL": "100"}}
    )
    deliver(lumi)
    assert {m: f[1] for m, f in figures(cost_share_report(a)).items()} == {
        "FI": "10.00",
        "SE": "50.00",
        "NL": "100.00",
    }


def test_an_agreement_without_cost_sharing_has_no_report(lumi):
    people = lumi["people"]
    doc = document_store(actor=people["ops"], name="d.txt", content=b"dsa")
    a = agreements.agreement_propose(
        actor=people["ops"],
        kind="data_sharing",
        title="DSA",
        document_sha256=doc.sha256,
        terms={
            "parties": ["FI", "SE"],
            "effective": {"from": TODAY.isoformat(), "until": None},
            "data_use": {"permission": "DUO:0000042", "modifiers": [], "access_mode": "federated"},
        },
    )
    with pytest.raises(ReportError, match="no cost_sharing"):
        cost_share_report(a)


def test_a_cap_that_cannot_hold_over_the_bound_parties_is_noted(lumi):
    # Three parties, a cap of 0.4; only Finland and Sweden are bound: 0.4 x 2 < 1.
    from consortium.governance.models import Member

    Member.objects.filter(code__in=["FI", "SE", "NL"]).update(figures={"gni": "100"})
    people = lumi["people"]
    terms = {
        "parties": ["FI", "SE", "NL"],
        "required": ["FI", "SE"],
        "effective": {"from": TODAY.isoformat(), "until": None},
        "accounting_unit": "EUR",
        "cost_sharing": {"method": "figure", "figure": "gni", "cap": "0.4"},
    }
    doc = document_store(actor=people["ops"], name="c.txt", content=b"capped")
    a = agreements.agreement_propose(
        actor=people["ops"], kind="treaty", title="Capped", terms=terms, document_sha256=doc.sha256
    )
    for who in ("sig_fi", "sig_se"):
        a.refresh_from_db()
        agreements.agreement_sign(
            actor=people[who],
            agreement=a,
            terms_sha256=a.terms_sha256,
            document_sha256=a.document_sha256,
        )
    r = cost_share_report(a).as_dict()
    assert [m["share"] for m in r["members"]] == ["0.5", "0.5"]
    assert any("cannot hold" in n for n in r["notes"])


def test_zero_weights_carry_nothing_and_the_rest_share_the_cost():
    shares = capped({"A": Decimal(100), "B": Decimal(0), "C": Decimal(50)}, Decimal("0.6"))
    assert shares == {"A": Decimal("0.6"), "B": Decimal(0), "C": Decimal("0.4")}


def test_a_report_of_an_agreement_not_in_force_says_so(lumi):
    people = lumi["people"]
    terms = {
        "parties": ["FI", "SE"],
        "effective": {"from": TODAY.isoformat(), "until": None},
        "accounting_unit": "EUR",
        "cost_sharing": {"method": "scale", "shares": {"FI": "0.5", "SE": "0.5"}},
    }
    doc = document_store(actor=people["ops"], name="o.txt", content=b"open")
    a = agreements.agreement_propose(
        actor=people["ops"], kind="treaty", title="Open", terms=terms, document_sha256=doc.sha256
    )
    assert any("open for signature" in n for n in cost_share_report(a).as_dict()["notes"])
