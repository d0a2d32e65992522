"""The balances the download gate reads: tallies kept by the appliers, equal to the
cost-share report over all time after every step of a varied history."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from consortium.governance import proposals
from consortium.governance.votes import vote_cast
from contributions.balances import balance_report, tally_rebuild
from contributions.compute import import_attest, sacct_import
from contributions.data import data_contribute
from contributions.disputes import contribution_dispute, dispute_resolve
from contributions.funds import funds_confirm, funds_contribute, funds_reject
from contributions.models import Contribution, ContributionTally
from contributions.report import cost_share_report
from tests.steps.contributions import DATASET, JOBS, TODAY, VALUATION, treaty
from tests.steps.governance import decide_after_deadline


def same_figures(a) -> None:
    """The report from the tallies is the report from the contributions, to the digit."""
    projected, scanned = balance_report(a), cost_share_report(a)
    assert [vars(ln) for ln in projected.lines] == [vars(ln) for ln in scanned.lines]
    assert (projected.notes, projected.tables) == (scanned.notes, scanned.tables)
    assert [ln.ratio for ln in projected.lines] == [ln.ratio for ln in scanned.lines]


def tallies() -> list[tuple]:
    return list(ContributionTally.objects.order_by("key").values_list())


class History:
    """Random steps of a treaty's life: imports reported and attested, funds paid,
    confirmed or rejected, datasets with and without tokens, disputes upheld or
    dismissed, and a valuation table adopted by vote midway."""

    def __init__(self, lumi, seed: int):
        self.lumi, self.people = lumi, lumi["people"]
        self.rng = random.Random(seed)
        self.jobs = 100
        self.reported: list = []
        self.pending: list[Contribution] = []
        self.disputes: list = []
        self.adopted = False

    def step(self) -> str:
        rng, people = self.rng, self.people
        choices = ["import", "funds", "data", "dispute"]
        choices += ["attest"] if self.reported else []
        choices += ["settle"] if self.pending else []
        choices += ["resolve"] if self.disputes else []
        choices += [] if self.adopted else ["valuation"]
        what = rng.choice(choices)
        if what == "import":
            self.jobs += 10
            data = JOBS.replace(b"|1|lumi|", f"|{self.jobs}|lumi|".encode())
            data = data.replace(b"|3|lumi|", f"|{self.jobs + 1}|lumi|".encode())
            data = data.replace(
                b"02:00:00", f"0{rng.randint(1, 9)}:{rng.randint(10, 59)}:07".encode()
            )
            actor = rng.choice(["ops", "rec_fi"])
            _, _, imported = sacct_import(
                actor=people[actor], facility=self.lumi["facility"], data=data
            )
            if imported.attested_in is None:
                self.reported.append(imported)
        elif what == "attest":
            import_attest(actor=people["sig_fi"], sacct_import=self.reported.pop())
        elif what == "funds":
            who, currency = rng.choice([("rec_se", "SEK"), ("sig_nl", "EUR"), ("rec_fi", "EUR")])
            amount = f"{rng.randint(1, 5000)}.{rng.randint(0, 999999):06d}"
            self.pending.append(
                funds_contribute(
                    actor=people[who], amount=amount, currency=currency, date_paid=TODAY.isoformat()
                )
            )
        elif what == "settle":
            c = self.pending.pop(rng.randrange(len(self.pending)))
            if rng.random() < 0.75:
                funds_confirm(actor=people["ops"], contribution=c)
            else:
                funds_reject(actor=people["ops"], contribution=c, reason="not in our books")
        elif what == "data":
            dataset = {**DATASET, "manifest_sha256": f"{rng.getrandbits(256):064x}"}
            if rng.random() < 0.3:
                dataset = {k: v for k, v in dataset.items() if k != "tokens"} | {"records": 10}
            else:
                dataset["tokens"] = rng.randint(1, 10**11)
            data_contribute(actor=people[rng.choice(["sig_nl", "sig_fi"])], dataset=dataset)
        elif what == "dispute":
            target = (
                Contribution.objects.filter(
                    disputed=False, state__in=["counted", "reported", "pending"]
                )
                .exclude(member="FI")
                .order_by("recorded_in")
                .first()
            )
            if target is None:
                return "nothing to dispute"
            self.disputes.append(
                contribution_dispute(actor=people["sig_fi"], contribution=target, reason="?")
            )
        elif what == "resolve":
            outcome = rng.choice(["upheld", "dismissed"])
            dispute_resolve(
                actor=people["ops"], dispute=self.disputes.pop(), outcome=outcome, resolution="."
            )
        else:
            table = {**VALUATION, "version": 2, "weights": {"mi250x": "0.3", "h100": "1.7"}}
            p = proposals.proposal_open(
                actor=people["ops"],
                title="Table 2",
                actions=[{"type": "valuation.adopt", "table": table}],
                deadline=datetime.now(UTC) + timedelta(hours=1),
            )
            for who in ("sig_fi", "sig_se", "sig_nl"):
                vote_cast(actor=people[who], proposal=p, choice="yes")
            decide_after_deadline(p)
            self.adopted = True
        return what


@pytest.mark.parametrize("seed", [7, 2026])
def test_the_tallies_give_the_reports_figures_after_every_step(lumi, seed):
    a = treaty(lumi)
    same_figures(a)
    history, done = History(lumi, seed), []
    for _ in range(24):
        done.append(history.step())
        same_figures(a)
    # The history was varied: the report has something to be equal to.
    assert {"import", "funds", "data"} <= set(done), done
    assert any(ln.ratio is not None for ln in balance_report(a).lines)


def test_rebuilding_the_tallies_from_the_contributions_gives_the_same_rows(lumi):
    a = treaty(lumi)
    history = History(lumi, 11)
    for _ in range(16):
        history.step()
    kept = tallies()
    assert kept
    tally_rebuild()
    assert tallies() == kept
    same_figures(a)


def test_the_report_over_all_time_has_an_index_to_use():
    indexed = {tuple(i.fields) for i in Contribution._meta.indexes}
    assert ("member", "kind", "recorded_in") in indexed
