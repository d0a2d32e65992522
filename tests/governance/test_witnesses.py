"""Members register their witnesses on the ledger, each by its own signatory; the
witness policy is adopted by an accepted proposal.

Personas: the secretariat and the signatories of France, Germany and Italy, a recorder of
France (``delegates``).
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest

from consortium.governance import proposals
from consortium.governance.actions import describe
from consortium.governance.changes import GovernanceError
from consortium.governance.votes import vote_cast
from consortium.governance.witnesses import witness_register, witness_retire
from ledger import services
from ledger.core.envelope import new_envelope, sign_envelope
from ledger.models import Entry, Witness, WitnessPolicy
from ledger.witness.cosignature import generate_cosigner
from tests import worlds
from tests.steps.api import api_as
from tests.steps.governance import decide_after_deadline, italy_with_an_external_key

delegates = worlds.shared("delegates")


def vkey(name: str) -> str:
    return generate_cosigner(name).verifier.vkey()


def body(member="FR", name="witness.fr.example/1", **extra):
    return {
        "member": member,
        "url": f"https://{name.split('/')[0]}",
        "vkey": vkey(name),
        "mldsa_vkey": None,
        **extra,
    }


def test_a_signatory_registers_its_members_witness_on_the_ledger(delegates):
    fr = api_as(delegates["fr"])
    r = fr.post("/api/v1/witnesses", body(), format="json")
    assert r.status_code == 201, r.content
    doc = r.json()
    assert (doc["name"], doc["member"], doc["active"]) == ("witness.fr.example/1", "FR", True)
    entry = Entry.objects.get(index=doc["registered_in"])
    assert entry.kind == "witness.registered"
    assert entry.payload == {
        "member": "FR",
        "url": "https://witness.fr.example",
        "vkey": doc["vkey"],
        "mldsa_vkey": None,
    }
    # Signed by France's own member key.
    assert services.Key.objects.get(fingerprint=entry.author).owner == "FR"
    listed = fr.get("/api/v1/ledger/witnesses").json()["results"]
    assert [w["name"] for w in listed] == ["witness.fr.example/1"]


@pytest.mark.parametrize("who", ["de", "ops", "rec_fr", "aud"])
def test_no_one_but_the_members_signatory_registers_its_witness(delegates, who):
    before = Entry.objects.count()
    r = api_as(delegates[who]).post("/api/v1/witnesses", body(member="FR"), format="json")
    assert r.status_code == 403, r.content
    assert r["Content-Type"] == "application/problem+json"
    assert "FR" in r.json()["detail"] or "signatory" in r.json()["detail"]
    assert Entry.objects.count() == before
    assert not Witness.objects.exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"vkey": "witness+00000000+AAAA"}, "vkey"),
        ({"url": "ftp://witness.fr.example"}, "http"),
        ({"url": "https://witness.fr.example/"}, "trailing slash"),
        ({"url": "https://witness.fr.example/?a=1"}, "query"),
        ({"mldsa_vkey": "pq+00000000+AAAA"}, "mldsa_vkey"),
        ({"colour": "blue"}, "unknown field"),
    ],
)
def test_a_bad_witness_is_refused_and_nothing_written(delegates, change, message):
    before = Entry.objects.count()
    r = api_as(delegates["fr"]).post("/api/v1/witnesses", {**body(), **change}, format="json")
    assert r.status_code == 400, r.content
    assert message in str(r.json())
    assert Entry.objects.count() == before


def test_a_witness_name_is_never_taken_twice_and_retirement_is_the_members(delegates):
    w = witness_register(actor=delegates["fr"], **body())
    with pytest.raises(GovernanceError, match="registered already") as taken:
        witness_register(actor=delegates["de"], **body(member="DE", name=w.name))
    assert taken.value.status == 409
    # Germany cannot retire France's witness.
    r = api_as(delegates["de"]).post(
        "/api/v1/witnesses/retirement", {"witness": w.name, "reason": "r"}, format="json"
    )
    assert r.status_code == 403
    assert Witness.objects.get(name=w.name).retired_in is None
    r = api_as(delegates["fr"]).post(
        "/api/v1/witnesses/retirement", {"witness": w.name, "reason": "moved"}, format="json"
    )
    assert r.status_code == 200, r.content
    retired = Witness.objects.get(name=w.name)
    assert retired.retired_in == Entry.objects.get(kind="witness.retired").index
    # A retired name stays taken: a witness cannot start again from nothing under it.
    with pytest.raises(GovernanceError, match="registered already"):
        witness_register(actor=delegates["fr"], **body(name=w.name))
    with pytest.raises(GovernanceError, match="retired already"):
        witness_retire(actor=delegates["fr"], name=w.name, reason="again")


def test_an_entry_signed_by_another_members_key_registers_nothing(delegates):
    # Germany's key signing a witness "of France" is on the record, without effect.
    entry = services.entry_append(
        signer=_member_key("DE"), kind="witness.registered", payload=body(member="FR")
    )
    assert Entry.objects.filter(index=entry.index).exists()
    assert not Witness.objects.exists()


def _member_key(code):
    from consortium.governance.changes import member_signer

    return member_signer(code)


def _submit(client, key, kind, payload):
    env = new_envelope(kind=kind, payload=payload, author=key.fingerprint)
    sig = base64.b64encode(sign_envelope(env, key.signing_key).signature).decode()
    return client.post("/api/v1/ledger/entries", {"envelope": env, "signature": sig}, format="json")


def test_a_member_with_its_own_key_submits_its_witness_and_no_one_elses(delegates):
    it_key, it_user = italy_with_an_external_key(delegates)
    before = Entry.objects.count()
    # Germany's signatory may not submit Italy's entry; Italy's key may not register
    # France's witness.
    assert (
        _submit(api_as(delegates["de"]), it_key, "witness.registered", body("IT")).status_code
        == 403
    )
    r = _submit(api_as(it_user), it_key, "witness.registered", body("FR"))
    assert r.status_code == 403 and "cannot register a witness of FR" in r.json()["detail"]
    r = _submit(api_as(it_user), it_key, "witness.registered", {**body("IT"), "url": "x"})
    assert r.status_code == 400
    assert Entry.objects.count() == before
    r = _submit(api_as(it_user), it_key, "witness.registered", body("IT", "witness.it.example"))
    assert r.status_code == 201, r.content
    assert Witness.objects.get().member == "IT"
    r = _submit(
        api_as(it_user), it_key, "witness.retired", {"witness": "witness.it.example", "reason": "r"}
    )
    assert r.status_code == 201, r.content
    assert Witness.objects.get().retired_in is not None


# --- the policy ---------------------------------------------------------------------------


def policy_text():
    return (
        "# two of the three founding members' witnesses\n"
        f"witness fr {vkey('witness.fr.example')}\n"
        f"witness de {vkey('witness.de.example')}\n"
        f"witness it {vkey('witness.it.example')}\n"
        "group founders 2 fr de it\n"
        "quorum founders\n"
    )


def decide(delegates, actions):
    p = proposals.proposal_open(
        actor=delegates["ops"],
        title="Witnessing",
        actions=actions,
        deadline=datetime.now(UTC) + timedelta(hours=1),
    )
    for who in ("fr", "de"):
        vote_cast(actor=delegates[who], proposal=p, choice="yes")
    return decide_after_deadline(p)


def test_a_witness_policy_is_adopted_by_an_accepted_proposal(delegates):
    assert services.witness_policy_text() is None
    text = policy_text()
    p = decide(delegates, [{"type": "witness.policy", "policy": text}])
    assert p.state == "accepted"
    adopted = WitnessPolicy.objects.get()
    assert (adopted.text, adopted.adopted_in) == (text, p.closed_in)
    assert services.witness_policy_text() == text
    # A later policy replaces it.
    later = text.replace("founders 2", "founders 3")
    p2 = decide(delegates, [{"type": "witness.policy", "policy": later}])
    assert services.witness_policy_text() == later and p2.closed_in > p.closed_in
    assert describe({"type": "witness.policy", "policy": later}) == (
        "Adopt the witness policy (3 witnesses; quorum founders)"
    )


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ("quorum nobody\n", "does not parse"),
        ("witness a b+00000000+AAAA\nquorum a\n", "does not parse"),
        ("", "at most"),
        (42, "tlog-policy text"),
    ],
)
def test_a_policy_that_does_not_parse_is_refused_when_proposed(delegates, policy, message):
    with pytest.raises(GovernanceError, match=message):
        proposals.proposal_open(
            actor=delegates["ops"],
            title="t",
            actions=[{"type": "witness.policy", "policy": policy}],
            deadline=datetime.now(UTC) + timedelta(hours=1),
        )
    assert not WitnessPolicy.objects.exists()
