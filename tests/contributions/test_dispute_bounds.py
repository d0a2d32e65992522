"""One member cannot cut another off on its word alone: an open dispute leaves the
contribution counting (for the download gate, the balance ratio and the cost shares,
where it is shown as disputed) until the secretariat upholds it; one open dispute per
contribution; only a signatory of a member bound with the contribution's member by an
agreement in force that shares cost disputes; the reason is in the entry the disputing
member's key signs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from consortium.access.entitlements import balance_ratio, entitlement
from consortium.governance import agreements
from consortium.governance.changes import GovernanceError, member_signer
from consortium.governance.documents import document_store
from contributions.data import data_contribute
from contributions.disputes import contribution_dispute, dispute_resolve
from contributions.funds import funds_contribute
from contributions.models import Contribution, Dispute
from contributions.report import cost_share_report
from ledger import services as ledger
from ledger.core.envelope import parse_leaf, verify_leaf_signature
from ledger.keys import log_origin
from ledger.services import Entry, Key
from tests.steps.access import WEIGHTS, authorize, streamed
from tests.steps.api import api_as
from tests.steps.contributions import DATASET, deliver, treaty

TODAY = datetime.now(UTC).date()


def _dispute_all(lumi, member, by="sig_nl"):
    return [
        contribution_dispute(actor=lumi["people"][by], contribution=c, reason="?")
        for c in Contribution.objects.filter(member=member)
    ]


def test_disputing_every_contribution_of_a_member_cuts_nothing_off(lumi, checkpoint):
    a = checkpoint.model.agreement
    url = authorize(lumi, checkpoint.digest).json()["files"]["model.safetensors"]
    ratio = balance_ratio(a, "SE")
    disputes = _dispute_all(lumi, "SE")
    assert len(disputes) == 2  # its compute and its funds
    assert balance_ratio(a, "SE") == ratio and ratio > 1
    assert entitlement("SE", checkpoint).allow
    # Its live download token still works, and new requests are allowed.
    got = api_as(lumi["people"]["rec_se"]).get(url)
    assert got.status_code == 200 and streamed(got) == WEIGHTS
    assert authorize(lumi, checkpoint.digest).status_code == 201
    se = next(m for m in cost_share_report(a).as_dict()["members"] if m["member"] == "SE")
    assert se["disputed"] == se["delivered"]["total"] == "91.00"


def test_an_upheld_dispute_stops_the_contribution_counting(lumi, checkpoint):
    a = checkpoint.model.agreement
    for d in _dispute_all(lumi, "SE"):
        dispute_resolve(
            actor=lumi["people"]["ops"], dispute=d, outcome="upheld", resolution="not delivered"
        )
    assert balance_ratio(a, "SE") == 0
    d = entitlement("SE", checkpoint)
    assert not d.allow and "balance ratio under 0.8" in d.rule


def test_a_dismissed_dispute_leaves_the_contribution_as_it_was(lumi):
    treaty(lumi)
    paid = deliver(lumi)
    d = contribution_dispute(actor=lumi["people"]["sig_fi"], contribution=paid, reason="?")
    dispute_resolve(
        actor=lumi["people"]["ops"], dispute=d, outcome="dismissed", resolution="it arrived"
    )
    paid.refresh_from_db()
    assert (paid.state, paid.disputed) == ("counted", False)


def test_a_second_dispute_is_a_409_naming_the_open_one(lumi):
    treaty(lumi)
    paid = deliver(lumi)
    first = contribution_dispute(
        actor=lumi["people"]["sig_fi"], contribution=paid, reason="never received"
    )
    before = Entry.objects.count()
    with pytest.raises(GovernanceError, match=str(first.id)) as exc:
        contribution_dispute(actor=lumi["people"]["sig_se"], contribution=paid, reason="me too")
    assert exc.value.status == 409
    r = api_as(lumi["people"]["sig_se"]).post(
        f"/api/v1/contributions/{paid.id}/disputes", {"reason": "me too"}, format="json"
    )
    assert r.status_code == 409 and str(first.id) in r.json()["detail"]
    assert r["Content-Type"] == "application/problem+json"
    assert Entry.objects.count() == before
    # Once it is resolved, another may be opened.
    dispute_resolve(
        actor=lumi["people"]["ops"], dispute=first, outcome="dismissed", resolution="it arrived"
    )
    contribution_dispute(actor=lumi["people"]["sig_se"], contribution=paid, reason="?")
    assert Dispute.objects.filter(contribution=paid, resolved_in__isnull=True).count() == 1


def _two_party_treaty(lumi):
    """A treaty in force between Finland and Sweden; the Netherlands is not a party."""
    people = lumi["people"]
    terms = {
        "parties": ["FI", "SE"],
        "effective": {"from": TODAY.isoformat(), "until": None},
        "accounting_unit": "EUR",
        "cost_sharing": {"method": "scale", "shares": {"FI": "0.5", "SE": "0.5"}},
    }
    doc = document_store(actor=people["ops"], name="b.txt", content=b"bilateral")
    a = agreements.agreement_propose(
        actor=people["ops"],
        kind="treaty",
        title="Bilateral",
        terms=terms,
        document_sha256=doc.sha256,
    )
    for who in ("sig_fi", "sig_se"):
        a.refresh_from_db()
        agreements.agreement_sign(
            actor=people[who],
            agreement=a,
            terms_sha256=a.terms_sha256,
            document_sha256=a.document_sha256,
        )
    return a


def test_only_a_signatory_of_a_bound_party_disputes(lumi):
    _two_party_treaty(lumi)
    paid = funds_contribute(
        actor=lumi["people"]["rec_se"], amount="5", currency="EUR", date_paid=TODAY.isoformat()
    )
    before = Entry.objects.count()
    with pytest.raises(GovernanceError, match="bound with SE") as exc:
        contribution_dispute(actor=lumi["people"]["sig_nl"], contribution=paid, reason="?")
    assert exc.value.status == 403
    r = api_as(lumi["people"]["sig_nl"]).post(
        f"/api/v1/contributions/{paid.id}/disputes", {"reason": "?"}, format="json"
    )
    assert r.status_code == 403 and r["Content-Type"] == "application/problem+json"
    assert Entry.objects.count() == before
    contribution_dispute(actor=lumi["people"]["sig_fi"], contribution=paid, reason="?")


def test_without_an_agreement_in_force_no_one_disputes(lumi):
    # Funds need a treaty in force to be recorded at all; a dataset needs none.
    offered = data_contribute(actor=lumi["people"]["rec_se"], dataset=DATASET)
    with pytest.raises(GovernanceError) as exc:
        contribution_dispute(actor=lumi["people"]["sig_fi"], contribution=offered, reason="?")
    assert exc.value.status == 403


def test_the_reason_is_in_the_entry_signed_by_the_disputing_members_key(lumi):
    treaty(lumi)
    paid = deliver(lumi)
    d = contribution_dispute(
        actor=lumi["people"]["sig_fi"],
        contribution=paid,
        reason="the transfer was reversed on 3 May",
    )
    entry = Entry.objects.get(index=d.opened_in)
    assert entry.kind == "contribution.disputed"
    assert entry.payload == {
        "dispute": str(d.id),
        "contribution": str(paid.id),
        "reason": "the transfer was reversed on 3 May",
    }
    key = Key.objects.get(fingerprint=entry.author)
    assert (key.kind, key.owner, key.custody) == ("member", "FI", "hosted")
    assert verify_leaf_signature(parse_leaf(bytes(entry.leaf)), bytes(key.public_key), log_origin())


def test_dispute_entries_that_break_the_bounds_are_without_effect(lumi):
    _two_party_treaty(lumi)
    paid = funds_contribute(
        actor=lumi["people"]["rec_se"], amount="5", currency="EUR", date_paid=TODAY.isoformat()
    )
    # The Netherlands is bound with Sweden by nothing: its signed dispute changes nothing.
    ledger.entry_append(
        signer=member_signer("NL"),
        kind="contribution.disputed",
        payload={
            "dispute": "00000000-0000-4000-8000-000000000001",
            "contribution": str(paid.id),
            "reason": "?",
        },
    )
    assert not Dispute.objects.exists()
    first = contribution_dispute(actor=lumi["people"]["sig_fi"], contribution=paid, reason="?")
    # A second open dispute, signed by a bound party past the service: without effect.
    ledger.entry_append(
        signer=member_signer("SE"),
        kind="contribution.disputed",
        payload={
            "dispute": "00000000-0000-4000-8000-000000000002",
            "contribution": str(paid.id),
            "reason": "again",
        },
    )
    assert list(Dispute.objects.values_list("id", flat=True)) == [first.id]
