"""Replay rebuilds the balances' tallies from the entries alone, row for row."""

from __future__ import annotations

import pytest

from contributions.models import ContributionTally
from ledger.replay import projections, replay_check
from tests.contributions.test_balances import History, same_figures
from tests.personas import found_lumi
from tests.steps.contributions import treaty

pytestmark = pytest.mark.slow


def test_replay_rebuilds_the_tallies_and_names_one_changed_behind_its_back(committed_db):
    world = found_lumi()
    a = treaty(world)
    history = History(world, 5)
    for _ in range(14):
        history.step()
    same_figures(a)
    assert ContributionTally in projections() and ContributionTally.objects.exists()
    report = replay_check()
    assert report.ok, report.differences
    row = ContributionTally.objects.order_by("key").first()
    ContributionTally.objects.filter(key=row.key).update(gpu_seconds=row.gpu_seconds + 1)
    report = replay_check()
    assert report.differences == [f"contributions.ContributionTally {row.key}: gpu_seconds differ"]
