"""Migration 0003 brings existing projections to the new rules: a disputed contribution
keeps its state under its open dispute, one open dispute per contribution, funds wait
for their treasurer's confirmation."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.slow
BEFORE = [("contributions", "0002_counted_allocations")]
AFTER = [("contributions", "0003_funds_confirmation_and_open_disputes")]


def test_existing_rows_follow_the_new_rules(committed_db):
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    apps = executor.loader.project_state(BEFORE).apps
    Member = apps.get_model("consortium", "Member")
    Contribution = apps.get_model("contributions", "Contribution")
    Dispute = apps.get_model("contributions", "Dispute")
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

        def contribution(kind, state, **extra):
            return Contribution.objects.create(
                id=uuid.uuid4(),
                kind=kind,
                member_id="SE",
                state=state,
                recorded_in=2,
                recorded_at="2026-01-01T00:00:00Z",
                delivered_on="2026-01-01",
                **extra,
            )

        paid = contribution("funds", "counted", amount=1, amount_micros=10**6, currency="EUR")
        held = contribution("funds", "disputed", amount=1, amount_micros=10**6, currency="EUR")
        reported = contribution("compute", "disputed", gpu_seconds=3600)
        attested = contribution("compute", "disputed", gpu_seconds=3600, attested_in=3)
        first, second = (
            Dispute.objects.create(
                id=uuid.uuid4(), contribution=reported, member_id="SE", reason="?", opened_in=i
            )
            for i in (4, 5)
        )
        Dispute.objects.create(
            id=uuid.uuid4(), contribution=held, member_id="SE", reason="?", opened_in=6
        )
        Dispute.objects.create(
            id=uuid.uuid4(), contribution=attested, member_id="SE", reason="?", opened_in=7
        )
        executor = MigrationExecutor(connection)
        executor.migrate(AFTER)
        apps = executor.loader.project_state(AFTER).apps
        Contribution = apps.get_model("contributions", "Contribution")
        Dispute = apps.get_model("contributions", "Dispute")
        states = {c.id: (c.state, c.disputed) for c in Contribution.objects.all()}
        assert states == {
            paid.id: ("pending", False),
            held.id: ("pending", True),
            reported.id: ("reported", True),
            attested.id: ("counted", True),
        }
        assert set(
            Dispute.objects.filter(contribution_id=reported.id).values_list("id", flat=True)
        ) == {first.id}
        assert second.id not in set(Dispute.objects.values_list("id", flat=True))
    finally:
        MigrationExecutor(connection).migrate(
            MigrationExecutor(connection).loader.graph.leaf_nodes()
        )
