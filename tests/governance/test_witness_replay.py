"""The witnesses and the witness policy are projections of the log: ``ledger replay
--check`` rebuilds them from the entries alone (registrations, a refused one, a
retirement, a policy adopted by vote) and finds them equal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from consortium.governance import proposals
from consortium.governance.changes import member_signer
from consortium.governance.votes import vote_cast
from consortium.governance.witnesses import witness_register, witness_retire
from ledger import services
from ledger.models import Witness, WitnessPolicy
from ledger.replay import replay_check
from ledger.witness.cosignature import generate_cosigner
from tests.personas import found_delegates
from tests.steps.governance import decide_after_deadline

pytestmark = pytest.mark.slow


def test_replay_rebuilds_the_witnesses_and_the_policy(committed_db):
    delegates = found_delegates()
    keys = {
        c: generate_cosigner(f"witness.{c.lower()}.example").verifier.vkey() for c in ["FR", "DE"]
    }
    for code, vkey in keys.items():
        witness_register(
            actor=delegates[code.lower()],
            member=code,
            # Nothing listens there: publications on commit ask it and get no answer.
            url="http://127.0.0.1:9",
            vkey=vkey,
        )
    # Italy's key signing a witness "of France": on the record, without effect.
    services.entry_append(
        signer=member_signer("IT"),
        kind="witness.registered",
        payload={
            "member": "FR",
            "url": "https://elsewhere.example",
            "vkey": generate_cosigner("witness.fake.example").verifier.vkey(),
            "mldsa_vkey": None,
        },
    )
    witness_retire(actor=delegates["de"], name="witness.de.example", reason="moved")
    text = f"witness fr {keys['FR']}\nwitness de {keys['DE']}\ngroup g any fr de\nquorum g\n"
    p = proposals.proposal_open(
        actor=delegates["ops"],
        title="Witness policy",
        actions=[{"type": "witness.policy", "policy": text}],
        deadline=datetime.now(UTC) + timedelta(hours=1),
    )
    for who in ("fr", "de"):
        vote_cast(actor=delegates[who], proposal=p, choice="yes")
    decide_after_deadline(p)
    assert sorted((w.name, w.active) for w in Witness.objects.all()) == [
        ("witness.de.example", False),
        ("witness.fr.example", True),
    ]
    assert WitnessPolicy.objects.get().text == text
    report = replay_check()
    assert report.ok, report.differences
