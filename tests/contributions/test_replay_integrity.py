"""Replay rebuilds the treasurer's confirmations and the bounded disputes from the
entries alone, entries without effect included."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.contrib.auth import get_user_model

from consortium.governance import agreements
from consortium.governance.changes import member_signer, secretariat_signer
from consortium.governance.documents import document_store
from contributions.compute import sacct_import
from contributions.disputes import contribution_dispute, dispute_resolve
from contributions.funds import funds_confirm, funds_contribute, funds_reject
from contributions.models import Contribution, Dispute
from ledger import services as ledger
from ledger.replay import replay_check
from tests.personas import found_lumi
from tests.steps.contributions import JOBS

pytestmark = pytest.mark.slow
User = get_user_model()
TODAY = datetime.now(UTC).date().isoformat()


def test_replay_rebuilds_confirmations_rejections_and_bounded_disputes(committed_db):
    world = found_lumi()
    people, lumi = world["people"], world["facility"]

    def treaty(title, **extra):
        terms = {
            "parties": ["FI", "SE"],
            "effective": {"from": TODAY, "until": None},
            "accounting_unit": "EUR",
            **extra,
            "cost_sharing": {"method": "scale", "shares": {"FI": "0.5", "SE": "0.5"}},
        }
        doc = document_store(actor=people["ops"], name=f"{title}.txt", content=title.encode())
        a = agreements.agreement_propose(
            actor=people["ops"], kind="treaty", title=title, terms=terms, document_sha256=doc.sha256
        )
        for who in ("sig_fi", "sig_se"):
            a.refresh_from_db()
            agreements.agreement_sign(
                actor=people[who],
                agreement=a,
                terms_sha256=a.terms_sha256,
                document_sha256=a.document_sha256,
            )

    # Under a treaty that names no treasurer: the secretariat confirms.
    treaty("T0")
    early = funds_contribute(actor=people["rec_se"], amount="3", currency="EUR", date_paid=TODAY)
    funds_confirm(actor=people["ops"], contribution=early)
    # A later treaty between Finland and Sweden names Finland its treasurer.
    treaty("T", treasurer="FI")
    paid = funds_contribute(actor=people["rec_se"], amount="100", currency="EUR", date_paid=TODAY)
    funds_confirm(actor=people["rec_fi"], contribution=paid, amount="99.5")
    bounced = funds_contribute(actor=people["rec_se"], amount="7", currency="EUR", date_paid=TODAY)
    funds_reject(actor=people["sig_fi"], contribution=bounced, reason="not received")
    own = funds_contribute(actor=people["rec_fi"], amount="5", currency="EUR", date_paid=TODAY)
    funds_confirm(actor=people["ops"], contribution=own)
    waiting = funds_contribute(actor=people["rec_se"], amount="8", currency="EUR", date_paid=TODAY)
    # A confirmation by a key that is not the treasurer's: without effect.
    ledger.entry_append(
        signer=secretariat_signer(),
        kind="funds.confirmed",
        payload={"contribution": str(waiting.id), "amount": "8", "currency": "EUR", "date": TODAY},
    )
    sacct_import(actor=people["rec_fi"], facility=lumi, data=JOBS)
    compute = Contribution.objects.get(member="SE", kind="compute")
    open_one = contribution_dispute(
        actor=people["sig_fi"], contribution=compute, reason="wrong partition"
    )
    # A second dispute of it, and one by a member bound by nothing: without effect.
    ledger.entry_append(
        signer=member_signer("SE"),
        kind="contribution.disputed",
        payload={
            "dispute": "00000000-0000-4000-8000-00000000000a",
            "contribution": str(compute.id),
            "reason": "again",
        },
    )
    ledger.entry_append(
        signer=member_signer("NL"),
        kind="contribution.disputed",
        payload={
            "dispute": "00000000-0000-4000-8000-00000000000b",
            "contribution": str(paid.id),
            "reason": "?",
        },
    )
    upheld = contribution_dispute(actor=people["sig_se"], contribution=own, reason="?")
    dispute_resolve(actor=people["ops"], dispute=upheld, outcome="upheld", resolution="reversed")

    states = {c.id: (c.state, c.disputed) for c in Contribution.objects.all()}
    assert states[early.id] == ("counted", False)
    assert states[paid.id] == ("counted", False)
    assert states[bounced.id] == ("rejected", False)
    assert states[own.id] == ("void", False)
    assert states[waiting.id] == ("pending", False)
    assert states[compute.id] == ("counted", True)
    assert set(Dispute.objects.values_list("id", flat=True)) == {open_one.id, upheld.id}
    report = replay_check()
    assert report.ok, report.differences
