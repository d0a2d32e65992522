"""Entitlements: who may download a checkpoint, in which scope, and why (the checkpoint and
its access rules: tests/personas.py, ``publish``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from consortium.access import checkpoints
from consortium.access.entitlements import entitlement
from consortium.governance import proposals
from consortium.governance.votes import vote_cast
from ledger.keys import log_origin
from tests.steps.api import api_as
from tests.steps.governance import decide_after_deadline, suspend_in_lumi

TODAY = datetime.now(UTC).date()


def test_a_member_at_its_share_gets_full_weights_at_once(checkpoint):
    d = entitlement("SE", checkpoint)
    assert d.allow and "balance ratio at or above 0.8" in d.rule
    assert d.figures["balance_ratio"] == "2.267"


def test_a_member_behind_waits_for_the_embargo(checkpoint):
    d = entitlement("FI", checkpoint)
    until = (TODAY + timedelta(days=90)).isoformat()
    assert not d.allow and d.figures["embargo_until"] == until and "under 0.8" in d.rule
    later = entitlement("FI", checkpoint, today=TODAY + timedelta(days=90))
    assert later.allow and "embargo of 90 days over" in later.rule


def test_scopes_follow_their_own_rules(checkpoint):
    assert entitlement("NL", checkpoint, "inference_only").allow
    d = entitlement("NL", checkpoint, "evaluation")
    assert not d.allow and "grants no evaluation access" in d.rule


def test_a_grant_decided_by_the_members_allows_its_scope(lumi, checkpoint):
    people = lumi["people"]
    p = proposals.proposal_open(
        actor=people["ops"],
        title="Evaluation for NL",
        actions=[
            {
                "type": "access.grant",
                "member": "NL",
                "scope": "evaluation",
                "checkpoints": [checkpoint.digest],
                "reason": "red-teaming",
            }
        ],
        deadline=datetime.now(UTC) + timedelta(hours=1),
    )
    for who in ("sig_fi", "sig_se"):
        vote_cast(actor=people[who], proposal=p, choice="yes")
    decide_after_deadline(p)
    d = entitlement("NL", checkpoint, "evaluation")
    assert d.allow and "access grant" in d.rule


def test_a_suspended_member_is_refused(lumi, checkpoint):
    people = lumi["people"]
    suspend_in_lumi(people, "SE")
    d = entitlement("SE", checkpoint)
    assert not d.allow and "not a member in good standing" in d.rule


def test_a_blocked_checkpoint_is_refused_to_everyone(checkpoint):
    from django.core.files.storage import default_storage

    assert entitlement("NL", checkpoint, "inference_only").allow
    target = checkpoints.stored_path(checkpoint.digest, "model.safetensors")
    with default_storage.open(target, "wb") as f:
        f.write(b"tampered")
    checkpoints.checkpoints_verify()
    checkpoint.refresh_from_db()
    d = entitlement("NL", checkpoint, "inference_only")
    assert not d.allow and "blocked" in d.rule


@pytest.mark.parametrize(
    "checkpoint", [{"requires_proposal": True, "requires_evaluation": False}], indirect=True
)
def test_a_release_that_needs_a_proposal_waits_for_it(lumi, checkpoint):
    d = entitlement("SE", checkpoint)
    assert not d.allow and "awaits an accepted proposal" in d.rule
    people = lumi["people"]
    p = proposals.proposal_open(
        actor=people["ops"],
        title="Release s1",
        actions=[{"type": "checkpoint.release", "checkpoint": checkpoint.digest}],
        deadline=datetime.now(UTC) + timedelta(hours=1),
    )
    for who in ("sig_fi", "sig_se"):
        vote_cast(actor=people[who], proposal=p, choice="yes")
    decide_after_deadline(p)
    assert entitlement("SE", checkpoint).allow


def test_the_api_answers_for_the_callers_own_member(lumi, checkpoint):
    url = f"/api/v1/access/check?checkpoint={checkpoint.digest}"
    r = api_as(lumi["people"]["rec_fi"]).get(url)
    assert r.status_code == 200 and r.json()["member"] == "FI" and r.json()["allow"] is False
    assert api_as(lumi["people"]["rec_fi"]).get(url + "&member=SE").status_code == 404
    assert api_as(lumi["people"]["aud"]).get(url).status_code == 400
    r = api_as(lumi["people"]["aud"]).get(url + "&member=SE&scope=full_weights")
    assert r.json()["allow"] is True
    assert api_as(lumi["people"]["rec_fi"]).get(url + "&scope=all").status_code == 400


@pytest.mark.parametrize(
    "checkpoint", [{"requires_proposal": False, "requires_evaluation": True}], indirect=True
)
def test_a_release_that_needs_an_evaluation_follows_the_latest_verdict(lumi, checkpoint):
    import base64

    from ledger.core.envelope import new_envelope, sign_envelope
    from ledger.keys import EntrySigner

    def attest(key, verdict):
        env = new_envelope(
            kind="evaluation.attested",
            author=key.fingerprint,
            payload={
                "checkpoint": checkpoint.digest,
                "report_sha256": "ef" * 32,
                "verdict": verdict,
            },
        )
        sig = base64.b64encode(sign_envelope(env, key.signing_key, log_origin()).signature).decode()
        return api_as(lumi["people"]["ops"]).post(
            "/api/v1/ledger/entries", {"envelope": env, "signature": sig}, format="json"
        )

    assert "awaits an accredited evaluator" in entitlement("SE", checkpoint).rule
    evaluator = EntrySigner.generate("aisi")
    checkpoints.evaluator_accredit(
        actor=None, code="aisi", name="AI Safety Institute", public_key=evaluator.public_key
    )
    stranger = EntrySigner.generate("stranger")
    assert attest(stranger, "pass").status_code == 400  # not a registered key
    assert attest(evaluator, "fail").status_code == 201
    assert "did not pass" in entitlement("SE", checkpoint).rule
    assert attest(evaluator, "pass").status_code == 201
    assert entitlement("SE", checkpoint).allow


def test_the_checkpoints_a_member_may_download_are_the_gates_allows(checkpoint, lumi):
    from consortium.access import selectors

    assert selectors.downloadable_checkpoints("SE") == [checkpoint]
    assert selectors.downloadable_checkpoints("FI") == []
    assert selectors.downloadable_checkpoints("NL", "inference_only") == [checkpoint]
    rows = selectors.access_table(lumi["people"]["sig_se"], checkpoint)
    assert [(code, scope, d.allow) for code, scope, d in rows] == [
        ("SE", "full_weights", True),
        ("SE", "inference_only", True),
        ("SE", "evaluation", False),
    ]
    everyone = {code for code, _, _ in selectors.access_table(lumi["people"]["aud"], checkpoint)}
    assert everyone == {"FI", "SE", "NL"}
