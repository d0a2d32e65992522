"""Replay equals the live tables after random sequences of governance operations.

Each seed drives a different sequence of seat changes, agreements (proposals,
signatures, withdrawals, abandonment, amendments) and proposals (opening, votes,
decisions with every kind of action), refused operations included; then
``ledger replay --check`` rebuilds every projection from the entries alone and must
find the live tables identical, and ``ledger verify`` must pass.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model

from consortium.governance import agreements, proposals
from consortium.governance.changes import GovernanceError
from consortium.governance.documents import document_store
from consortium.governance.members import consortium_found, member_apply, member_record
from consortium.governance.models import Agreement, Proposal, Seat, ValuationTable
from consortium.governance.seats import seat_assign, seat_vacate
from consortium.governance.votes import vote_cast
from ledger.replay import replay_check
from ledger.services import Key, LedgerError
from ledger.verify import verify_ledger
from tests.steps.governance import decide_after_deadline

pytestmark = pytest.mark.slow
User = get_user_model()
CODES = ("FR", "DE", "IT", "ES")
APPLICANTS = ("PT", "SE")


def _world():
    # Not the delegates' world: a fourth member and two applicants give the random runs room
    # for admissions, and every member's signatory (sig-XX) is drawn at random.
    consortium_found(
        name="C",
        members=[
            member_record(code=c, figures={"population": 10 + i}) for i, c in enumerate(CODES)
        ],
    )
    ops = User.objects.create_user("ops")
    seat_assign(actor=None, user=ops, role="secretariat")
    sig = {}
    for code in CODES:
        sig[code] = User.objects.create_user(f"sig-{code}")
        seat_assign(actor=ops, user=sig[code], role="signatory", member=code)
    return ops, sig


class Run:
    def __init__(self, rng: random.Random, ops, sig):
        self.rng, self.ops, self.sig = rng, ops, sig
        self.spares = 0

    def terms(self, proposer: str | None):
        parties = self.rng.sample(CODES, self.rng.randint(2, 4))
        if proposer and proposer not in parties:
            parties[0] = proposer
        share = {2: "0.5", 3: None, 4: "0.25"}[len(parties)]
        shares = (
            dict.fromkeys(parties, share)
            if share
            else dict(zip(parties, ("0.4", "0.3", "0.3"), strict=True))
        )
        t = {
            "parties": parties,
            "effective": {"from": datetime.now(UTC).date().isoformat(), "until": None},
            "accounting_unit": "EUR",
            "cost_sharing": {"method": "scale", "shares": shares},
        }
        if self.rng.random() < 0.3:
            t["required"] = parties[:2]
        return t

    def any_signatory(self):
        code = self.rng.choice(CODES)
        return code, self.sig[code]

    # Each operation may be refused; refusals must leave nothing behind.
    def propose(self):
        code, user = self.any_signatory()
        actor, proposer = (self.ops, None) if self.rng.random() < 0.3 else (user, code)
        doc = document_store(
            actor=actor, name="t.pdf", content=f"text {self.rng.random()}".encode()
        )
        in_force = list(Agreement.objects.filter(state="in_force"))
        supersedes = self.rng.choice(in_force) if in_force and self.rng.random() < 0.3 else None
        agreements.agreement_propose(
            actor=actor,
            kind="treaty",
            title="t",
            terms=self.terms(proposer),
            document_sha256=doc.sha256,
            supersedes=supersedes,
        )

    def sign(self):
        open_ = list(Agreement.objects.filter(state__in=["open", "signed", "in_force"]))
        if open_:
            a = self.rng.choice(open_)
            unsigned = list(
                a.parties.filter(signed_in__isnull=True).values_list("member", flat=True)
            )
            code = self.rng.choice(unsigned) if unsigned and self.rng.random() < 0.85 else None
            user = self.sig[code] if code else self.any_signatory()[1]
            good = self.rng.random() < 0.9
            agreements.agreement_sign(
                actor=user,
                agreement=a,
                document_sha256=a.document_sha256,
                terms_sha256=a.terms_sha256 if good else "0" * 64,
            )

    def withdraw(self):
        open_ = list(Agreement.objects.filter(state__in=["open", "signed", "in_force"]))
        if open_:
            _, user = self.any_signatory()
            agreements.agreement_withdraw(actor=user, agreement=self.rng.choice(open_))

    def terminate(self):
        open_ = list(Agreement.objects.filter(state__in=["open", "signed", "in_force"]))
        if open_:
            a = self.rng.choice(open_)
            agreements.agreement_terminate(actor=self.ops, agreement=a, reason="abandoned")

    def open_proposal(self):
        kinds = [
            "figures",
            "grant",
            "release",
            "valuation",
            "terminate",
            "suspend",
            "revoke",
            "admit",
        ]
        kind = self.rng.choice(kinds)
        code = self.rng.choice(CODES)
        in_force = list(Agreement.objects.filter(state="in_force"))
        version = (
            ValuationTable.objects.order_by("-version").first() or ValuationTable(version=0)
        ).version
        action = {
            "figures": {
                "type": "member.figures",
                "code": code,
                "figures": {"population": self.rng.randint(1, 99)},
            },
            "grant": {
                "type": "access.grant",
                "member": code,
                "scope": "evaluation",
                "reason": "eval",
            },
            "release": {
                "type": "checkpoint.release",
                "checkpoint": f"{self.rng.getrandbits(256):064x}",
            },
            "valuation": {
                "type": "valuation.adopt",
                "table": {"version": version + 1, "unit": "h", "weights": {"h100": "1"}},
            },
            "terminate": {
                "type": "agreement.terminate",
                "agreement": str(self.rng.choice(in_force).id) if in_force else "-",
                "reason": "ended",
            },
            "suspend": {"type": "member.suspend", "code": code},
            "admit": {
                "type": "member.admit",
                "member": member_record(
                    code=self.rng.choice(APPLICANTS), figures={"population": 5}
                ),
            },
            "revoke": {
                "type": "key.revoke",
                "reason": "lost",
                "fingerprint": getattr(
                    Key.objects.filter(kind="member", owner=code, revoked_at__isnull=True).first(),
                    "fingerprint",
                    "-",
                ),
            },
        }[kind]
        _, user = self.any_signatory()
        actor = self.ops if self.rng.random() < 0.5 else user
        proposals.proposal_open(
            actor=actor,
            title=kind,
            actions=[action],
            deadline=datetime.now(UTC) + timedelta(hours=1),
        )

    def vote(self):
        # Mostly on the oldest open proposal, so that votes gather and decisions carry.
        open_ = list(Proposal.objects.filter(state="open").order_by("opened_in"))
        if open_:
            target = open_[0] if self.rng.random() < 0.7 else self.rng.choice(open_)
            _, user = self.any_signatory()
            choice = self.rng.choice(["yes", "yes", "yes", "no", "abstain"])
            vote_cast(actor=user, proposal=target, choice=choice)

    def decide(self):
        # The open proposal with the most votes: most decisions then carry.
        ranked = sorted(Proposal.objects.filter(state="open"), key=lambda p: -p.votes.count())
        if ranked:
            decide_after_deadline(ranked[0])

    def apply(self):
        code = self.rng.choice(APPLICANTS)
        member_apply(actor=self.ops, record={"code": code, "figures": {"population": 5}})

    def seat(self):
        code, user = self.any_signatory()
        seats = list(Seat.objects.filter(member=code, role="recorder", vacated_in__isnull=True))
        if seats and self.rng.random() < 0.5:
            seat_vacate(actor=user, seat=self.rng.choice(seats), reason="moved")
        else:
            self.spares += 1
            spare = User.objects.create_user(f"rec-{self.spares}")
            seat_assign(actor=user, user=spare, role="recorder", member=code)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_replay_equals_live_state_after_random_operations(committed_db, seed):
    ops, sig = _world()
    run = Run(random.Random(seed), ops, sig)
    operations = [
        run.propose,
        run.propose,
        run.sign,
        run.sign,
        run.sign,
        run.sign,
        run.sign,
        run.withdraw,
        run.terminate,
        run.open_proposal,
        run.open_proposal,
        run.vote,
        run.vote,
        run.vote,
        run.vote,
        run.decide,
        run.seat,
        run.apply,
    ]
    done = refused = 0
    for _ in range(120):
        try:
            run.rng.choice(operations)()
            done += 1
        except (GovernanceError, LedgerError):
            refused += 1
    assert done > 20 and refused > 0  # the sequence exercised both paths
    report = replay_check()
    assert report.ok, report.differences
    assert verify_ledger(workers=2).ok
