"""Governance steps: agreements proposed, proposals opened and decided."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import time_machine

from consortium.governance import agreements, proposals
from consortium.governance.documents import document_store
from ledger import services
from ledger.keys import EntrySigner
from ledger.services import log_signer, parse_time

TODAY = datetime.now(UTC).date()


def decide_after_deadline(proposal):
    """Decide ``proposal`` with the clock moved just past its deadline, as the beat
    task would (the decision entry then carries that integration time)."""
    with time_machine.travel(parse_time(proposal.deadline) + timedelta(seconds=1)):
        return proposals.proposal_decide(proposal=proposal)


def suspend_in_lumi(people, code: str = "SE"):
    """The LUMI world's secretariat proposes suspending ``code``, the other two
    signatories vote yes, and the proposal is decided: ``code`` is suspended."""
    from consortium.governance.votes import vote_cast

    p = proposals.proposal_open(
        actor=people["ops"],
        title=f"Suspend {code}",
        actions=[{"type": "member.suspend", "code": code}],
        deadline=datetime.now(UTC) + timedelta(minutes=5),
    )
    for who in ("sig_fi", "sig_nl", "sig_se"):
        if who != f"sig_{code.lower()}":
            vote_cast(actor=people[who], proposal=p, choice="yes")
    return decide_after_deadline(p)


def treaty_terms(parties=("FR", "DE", "IT"), start=None, until=None, **extra):
    """The delegates' treaty: scale shares among France, Germany and Italy (shares by GNI
    among any other parties), in force from ``start`` (today) until ``until``."""
    shares = {"FR": "0.3", "DE": "0.45", "IT": "0.25"}
    return {
        "parties": list(parties),
        "effective": {
            "from": (start or TODAY).isoformat(),
            "until": until.isoformat() if until else None,
        },
        "accounting_unit": "EUR",
        "cost_sharing": {"method": "scale", "shares": {c: shares[c] for c in parties}}
        if set(parties) == {"FR", "DE", "IT"}
        else {"method": "figure", "figure": "gni"},
        **extra,
    }


def upload(actor, content=b"%PDF-1.7 treaty text", name="treaty.pdf"):
    """A document stored by ``actor``, for an agreement to name."""
    return document_store(actor=actor, name=name, content=content, media_type="application/pdf")


def propose(delegates, who="ops", terms=None, kind="treaty", **kw):
    """The founding treaty (``treaty_terms`` unless ``terms``), proposed by ``who``."""
    doc = upload(delegates[who])
    return agreements.agreement_propose(
        actor=delegates[who],
        kind=kind,
        title="Founding treaty",
        terms=terms or treaty_terms(),
        document_sha256=doc.sha256,
        **kw,
    )


def open_proposal(delegates):
    """A proposal by the secretariat to suspend Italy, open for an hour."""
    return proposals.proposal_open(
        actor=delegates["ops"],
        title="t",
        deadline=datetime.now(UTC) + timedelta(hours=1),
        actions=[{"type": "member.suspend", "code": "IT"}],
    )


def italy_with_an_external_key(delegates):
    """Italy's own key, registered beside its hosted one, and its signatory (whose partner
    system holds that key)."""
    it_key = EntrySigner.generate("it-ext")
    services.key_register(
        signer=log_signer(), kind="member", owner="IT", name="it-ext", public_key=it_key.public_key
    )
    return it_key, delegates["it"]
