"""Migration 0005 tallies the contributions a database already holds."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.slow
BEFORE = [("contributions", "0004_verbose_names")]
AFTER = [("contributions", "0005_balance_tallies")]


def test_the_contributions_a_database_holds_are_tallied(committed_db):
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    apps = executor.loader.project_state(BEFORE).apps
    Member = apps.get_model("consortium", "Member")
    Contribution = apps.get_model("contributions", "Contribution")
    try:
        Member.objects.create(
            code="SE",
            kind="nation",
            name="Sweden",
            country="SE",
            figures={},
            status="member",
            registered_in=1,
            changed_in=1,
        )

        def contribution(kind, state, recorded_in, **extra):
            Contribution.objects.create(
                id=uuid.uuid4(),
                kind=kind,
                member_id="SE",
                state=state,
                recorded_in=recorded_in,
                recorded_at="2026-01-01T00:00:00Z",
                delivered_on="2026-01-01",
                **extra,
            )

        contribution("compute", "counted", 5, gpu_seconds=3600, accelerator="h100")
        contribution("compute", "counted", 6, gpu_seconds=7200, accelerator="h100")
        contribution("compute", "reported", 12, gpu_seconds=60, accelerator="h100")
        contribution("funds", "pending", 7, amount=1, amount_micros=10**6, currency="EUR")
        contribution("data", "counted", 8, tokens=None, disputed=True)
        executor = MigrationExecutor(connection)
        executor.migrate(AFTER)
        apps = executor.loader.project_state(AFTER).apps
        Tally = apps.get_model("contributions", "ContributionTally")
        rows = {
            t.key: (t.contributions, t.gpu_seconds, t.untokened, t.amount_micros)
            for t in Tally.objects.all()
        }
        assert rows == {
            "SE/compute/0/counted/clear/h100": (2, 10800, 0, 0),
            "SE/compute/0/reported/clear/h100": (1, 60, 0, 0),
            "SE/funds/0/pending/clear/EUR": (1, 0, 0, 10**6),
            "SE/data/0/counted/disputed/": (1, 0, 1, 0),
        }
    finally:
        MigrationExecutor(connection).migrate(
            MigrationExecutor(connection).loader.graph.leaf_nodes()
        )
