"""Appends outside a transaction, from many threads, share commits (group commit)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from ledger import proofs, services
from ledger.errors import LedgerError
from ledger.keys import EntrySigner
from ledger.models import Entry
from ledger.verify import verify_ledger

pytestmark = pytest.mark.slow


@pytest.fixture
def signer(committed_signer):
    return committed_signer


def _run_threads(target, count):
    errors = []

    def wrapped(i):
        try:
            target(i)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=wrapped, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return errors


def test_threads_appending_outside_transactions_share_commits_without_gaps(signer):
    results = {}

    def work(i):
        results[i] = [
            services.entry_append(signer=signer, kind="test.sample", payload={"t": i, "n": n}).index
            for n in range(40)
        ]

    assert _run_threads(work, 8) == []
    assert sorted(ix for r in results.values() for ix in r) == list(range(2, 2 + 8 * 40))
    for i, indexes in results.items():
        assert indexes == sorted(indexes)
        assert [Entry.objects.get(index=ix).payload for ix in indexes] == [
            {"t": i, "n": n} for n in range(40)
        ]
    # Entries that shared a commit share an integration time: fewer commits than entries.
    commits = len({e.integrated_time for e in Entry.objects.filter(kind="test.sample")})
    assert commits < 8 * 40
    assert verify_ledger(workers=1).ok


def test_a_refused_entry_in_a_group_fails_only_its_own_caller(signer):
    stranger = EntrySigner.generate("stranger")
    outcomes = {}

    def work(i):
        who = stranger if i == 3 else signer
        try:
            for n in range(20):
                services.entry_append(signer=who, kind="test.sample", payload={"t": i, "n": n})
            outcomes[i] = "ok"
        except LedgerError as exc:
            outcomes[i] = str(exc)

    assert _run_threads(work, 6) == []
    assert "not a registered key" in outcomes.pop(3)
    assert set(outcomes.values()) == {"ok"}
    assert Entry.objects.filter(kind="test.sample").count() == 5 * 20
    assert proofs.tree_size() == 2 + 100


def test_an_append_from_a_commit_hook_of_a_group_does_not_wait_on_itself(signer):
    from django.db import transaction

    from ledger.log import applier

    seen = []

    def follow_up(entry):
        # An applier that records a follow-up entry once its own commit is done.
        transaction.on_commit(
            lambda: seen.append(
                services.entry_append(
                    signer=signer, kind="test.follow_up", payload={"of": entry.index}
                )
            )
        )

    applier("test.trigger")(follow_up)
    try:
        done = threading.Event()
        result = {}

        def work():
            result["e"] = services.entry_append(signer=signer, kind="test.trigger", payload={})
            done.set()
            connection.close()

        t = threading.Thread(target=work)
        t.start()
        assert done.wait(timeout=30), "the append never returned"
        t.join()
        assert [e.payload for e in seen] == [{"of": result["e"].index}]
        # And the process can still append afterwards.
        assert (
            services.entry_append(signer=signer, kind="test.sample", payload={}).index
            == seen[0].index + 1
        )
    finally:
        from ledger import log as ledger_log

        ledger_log._appliers.pop("test.trigger", None)
