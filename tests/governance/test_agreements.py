"""Agreements: terms checked against the schema, signatures over the exact hashes, entry
into force, amendments, withdrawal, termination and expiry; who may do what.

Personas: the secretariat, signatories of France, Germany and Italy, a recorder of
France, an auditor.
"""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.contrib.auth import get_user_model

from consortium.governance import agreements, proposals
from consortium.governance.agreement_checks import terms_hash
from consortium.governance.changes import GovernanceError, acting_signer, secretariat_signer
from consortium.governance.models import Agreement, AgreementParty, Document
from consortium.governance.selectors import (
    awaiting_signature,
    readable_document,
    visible_agreements,
)
from consortium.governance.votes import vote_cast
from ledger.services import Entry
from tests import worlds
from tests.steps.governance import decide_after_deadline, propose, treaty_terms, upload

# Every test here starts from the same world: built once for the module (tests/worlds.py).
delegates = worlds.shared("delegates")

User = get_user_model()
TODAY = datetime.now(UTC).date()


def on(day: date):
    """Travel to noon UTC on ``day`` (the clock keeps ticking there)."""
    return time_machine.travel(datetime(day.year, day.month, day.day, 12, tzinfo=UTC))


def sign(delegates, who, agreement, **kw):
    return agreements.agreement_sign(
        actor=delegates[who],
        agreement=agreement,
        terms_sha256=agreement.terms_sha256,
        document_sha256=agreement.document_sha256,
        **kw,
    )


def test_a_treaty_enters_into_force_when_every_party_has_signed(delegates):
    a = propose(delegates)
    assert a.state == "open" and a.version == 1 and a.series == a.id
    assert a.terms_sha256 == terms_hash(a.terms)
    assert set(a.parties.values_list("member", flat=True)) == {"FR", "DE", "IT"}
    sign(delegates, "fr", a)
    sign(delegates, "de", a)
    a.refresh_from_db()
    assert a.state == "open"
    party = sign(delegates, "it", a)
    a.refresh_from_db()
    assert a.state == "in_force" and a.in_force_in is not None
    assert party.signed_in is not None and party.signed_by
    kinds = list(Entry.objects.order_by("index").values_list("kind", flat=True))
    assert kinds[-2:] == ["agreement.signed", "agreement.in_force"]


def test_an_agreement_waits_for_its_effective_date(delegates):
    a = propose(delegates, terms=treaty_terms(start=TODAY + timedelta(days=10)))
    for who in ("fr", "de", "it"):
        sign(delegates, who, a)
    a.refresh_from_db()
    assert a.state == "signed"
    assert agreements.agreements_advance()["in_force"] == []
    with on(TODAY + timedelta(days=10)):
        done = agreements.agreements_advance()
    assert done["in_force"] == [str(a.id)]
    a.refresh_from_db()
    assert a.state == "in_force"


def test_only_required_parties_hold_back_entry_into_force(delegates):
    terms = treaty_terms(required=["FR", "DE"])
    a = propose(delegates, terms=terms)
    sign(delegates, "fr", a)
    sign(delegates, "de", a)
    a.refresh_from_db()
    assert a.state == "in_force"
    sign(delegates, "it", a)  # accedes later
    assert AgreementParty.objects.get(agreement=a, member="IT").signed_in is not None


def test_a_signature_over_other_hashes_is_refused_and_nothing_is_written(delegates):
    a = propose(delegates)
    before = Entry.objects.count()
    with pytest.raises(GovernanceError, match="terms hash you signed") as exc:
        agreements.agreement_sign(
            actor=delegates["fr"],
            agreement=a,
            terms_sha256="0" * 64,
            document_sha256=a.document_sha256,
        )
    assert exc.value.status == 409
    with pytest.raises(GovernanceError, match="64 lowercase hex"):
        agreements.agreement_sign(
            actor=delegates["fr"], agreement=a, terms_sha256="xyz", document_sha256="0" * 64
        )
    assert Entry.objects.count() == before


@pytest.mark.parametrize(
    ("who", "status", "message"),
    [
        ("rec_fr", 403, "secretariat or a member's signatory"),
        ("aud", 403, "secretariat or a member's signatory"),
        ("ops", 403, "secretariat does not sign"),
    ],
)
def test_who_may_not_sign(delegates, who, status, message):
    a = propose(delegates)
    before = Entry.objects.count()
    with pytest.raises(GovernanceError, match=message) as exc:
        sign(delegates, who, a)
    assert exc.value.status == status
    assert Entry.objects.count() == before


def test_a_signatory_signs_only_for_its_own_member_and_only_once(delegates):
    a = propose(delegates, terms=treaty_terms(parties=("FR", "DE")))
    with pytest.raises(GovernanceError, match="IT is not a party") as exc:
        sign(delegates, "it", a)
    assert exc.value.status == 403
    sign(delegates, "fr", a)
    with pytest.raises(GovernanceError, match="already signed"):
        sign(delegates, "fr", a)


def test_a_member_proposes_only_agreements_it_is_a_party_to(delegates):
    with pytest.raises(GovernanceError, match="IT proposes only agreements it is a party to"):
        propose(delegates, who="it", terms=treaty_terms(parties=("FR", "DE")))
    a = propose(delegates, who="fr", terms=treaty_terms(parties=("FR", "DE")))
    assert a.proposed_by == acting_signer(delegates["fr"])[0].fingerprint


BAD_TERMS = [
    (lambda t: t.pop("effective"), "terms: missing effective"),
    (lambda t: t.update(colour="red"), "unknown field colour"),
    (lambda t: t.update(parties=["FR", "FR"]), "terms.parties: names a member twice"),
    (lambda t: t.update(parties=["FR", "XX"]), "not members of the consortium: XX"),
    (lambda t: t["effective"].update({"from": "2026-02-30"}), "not a calendar date"),
    (lambda t: t["effective"].update({"until": "2000-01-01"}), "comes before"),
    (lambda t: t.update(accounting_unit="EURO"), "not an ISO 4217 currency"),
    (lambda t: t["cost_sharing"]["shares"].update(FR="0.31"), "must add up to 1"),
    (lambda t: t["cost_sharing"]["shares"].update(FR=0.3), "decimal written as a string"),
    (lambda t: t["cost_sharing"]["shares"].pop("IT"), "missing IT"),
    (lambda t: t.update(exchange_rates={"SEK": "-1"}), "written as digits"),
    (lambda t: t.update(exchange_rates={"SEK": "0"}), "positive number"),
    (lambda t: t.update(required=["ES"]), "terms.required: not members"),
    (
        lambda t: t.update(valuation={"version": 0, "unit": "h", "weights": {"h100": "1"}}),
        "terms.valuation.version",
    ),
    (lambda t: t.update(access=[{"scope": "all", "tier": "a"}]), "terms.access[0].scope"),
    (
        lambda t: t.update(
            data_use={"permission": "DUO:0000018", "modifiers": [], "access_mode": "federated"}
        ),
        "not a DUO data use permission",
    ),
    (
        lambda t: t.update(release={"requires_proposal": "yes", "requires_evaluation": True}),
        "terms.release.requires_proposal",
    ),
]


@pytest.mark.parametrize(("mutate", "message"), BAD_TERMS)
def test_terms_that_fail_the_schema_are_refused_with_the_field_named(delegates, mutate, message):
    terms = copy.deepcopy(treaty_terms())
    mutate(terms)
    before = (Entry.objects.count(), Agreement.objects.count())
    with pytest.raises(GovernanceError, match=message.replace("[", r"\[").replace("]", r"\]")):
        propose(delegates, terms=terms)
    assert (Entry.objects.count(), Agreement.objects.count()) == before


def test_each_kind_names_the_sections_it_needs(delegates):
    terms = {"parties": ["FR", "DE"], "effective": {"from": "2026-01-01", "until": None}}
    with pytest.raises(GovernanceError, match="terms: missing data_use"):
        propose(delegates, kind="data_sharing", terms=terms)
    terms["data_use"] = {
        "permission": "DUO:0000042",
        "modifiers": ["DUO:0000018"],
        "residency": "FR",
        "access_mode": "federated",
    }
    a = propose(delegates, kind="data_sharing", terms=terms)
    assert a.kind == "data_sharing"


def test_an_amendment_supersedes_the_old_version_from_its_own_entry_into_force(delegates):
    a = propose(delegates)
    for who in ("fr", "de", "it"):
        sign(delegates, who, a)
    a.refresh_from_db()
    new_terms = treaty_terms(start=TODAY + timedelta(days=30))
    b = propose(delegates, terms=new_terms, supersedes=a)
    assert (b.series, b.version, b.supersedes_id) == (a.series, 2, a.id)
    with pytest.raises(GovernanceError, match="version 2 of this agreement is still open"):
        propose(delegates, terms=new_terms, supersedes=a)
    for who in ("fr", "de", "it"):
        sign(delegates, who, b)
    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.state, b.state) == ("in_force", "signed")  # not before its own date
    with on(TODAY + timedelta(days=30)):
        agreements.agreements_advance()
    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.state, b.state) == ("superseded", "in_force")
    assert a.closed_in == b.in_force_in


def test_only_an_agreement_in_force_is_amended(delegates):
    a = propose(delegates)
    with pytest.raises(GovernanceError, match="only an agreement in force is amended"):
        propose(delegates, supersedes=a)


def test_withdrawal_of_a_required_party_holds_the_agreement_back(delegates):
    a = propose(delegates, terms=treaty_terms(start=TODAY + timedelta(days=5)))
    for who in ("fr", "de", "it"):
        sign(delegates, who, a)
    a.refresh_from_db()
    assert a.state == "signed"
    agreements.agreement_withdraw(actor=delegates["it"], agreement=a, reason="parliament said no")
    a.refresh_from_db()
    assert a.state == "open"
    with on(TODAY + timedelta(days=5)):
        assert agreements.agreements_advance()["in_force"] == []
    with pytest.raises(GovernanceError, match="IT has withdrawn"):
        sign(delegates, "it", a)
    with pytest.raises(GovernanceError, match="already withdrawn"):
        agreements.agreement_withdraw(actor=delegates["it"], agreement=a, reason="")


def test_the_secretariat_abandons_only_what_is_not_in_force(delegates):
    a = propose(delegates)
    with pytest.raises(GovernanceError, match="secretariat abandons"):
        agreements.agreement_terminate(actor=delegates["fr"], agreement=a, reason="no")
    agreements.agreement_terminate(actor=delegates["ops"], agreement=a, reason="superseded draft")
    a.refresh_from_db()
    assert (a.state, a.closed_reason) == ("terminated", "superseded draft")
    with pytest.raises(GovernanceError, match="the agreement is terminated"):
        sign(delegates, "fr", a)
    b = propose(delegates)
    for who in ("fr", "de", "it"):
        sign(delegates, who, b)
    with pytest.raises(GovernanceError, match="ends by an accepted proposal") as exc:
        agreements.agreement_terminate(actor=delegates["ops"], agreement=b, reason="no")
    assert exc.value.status == 409


def test_an_accepted_proposal_terminates_an_agreement_in_force(delegates):
    a = propose(delegates)
    for who in ("fr", "de", "it"):
        sign(delegates, who, a)
    p = proposals.proposal_open(
        actor=delegates["de"],
        title="End the treaty",
        actions=[{"type": "agreement.terminate", "agreement": str(a.id), "reason": "done"}],
        deadline=datetime.now(UTC) + timedelta(hours=1),
    )
    for who in ("fr", "de"):
        vote_cast(actor=delegates[who], proposal=p, choice="yes")
    decide_after_deadline(p)
    a.refresh_from_db()
    assert (a.state, a.closed_reason) == ("terminated", "done")


def test_an_agreement_expires_after_its_period(delegates):
    a = propose(delegates, terms=treaty_terms(until=TODAY + timedelta(days=1)))
    for who in ("fr", "de", "it"):
        sign(delegates, who, a)
    with on(TODAY + timedelta(days=1)):
        assert agreements.agreements_advance()["expired"] == []
    with on(TODAY + timedelta(days=2)):
        done = agreements.agreements_advance()
    a.refresh_from_db()
    assert done["expired"] == [str(a.id)] and a.state == "expired"
    assert a.closed_reason == "effective period ended"


def test_an_agreement_not_completed_within_its_period_expires_unsigned(delegates):
    a = propose(delegates, terms=treaty_terms(until=TODAY))
    sign(delegates, "fr", a)
    with on(TODAY + timedelta(days=1)):
        sign(delegates, "de", a)
        sign(delegates, "it", a)  # complete, but its period is over: not in force
        a.refresh_from_db()
        assert a.state == "signed"
        assert agreements.agreements_advance() == {"in_force": [], "expired": [str(a.id)]}
    a.refresh_from_db()
    assert a.state == "expired"


def test_an_expiry_entry_before_the_end_changes_nothing(delegates):
    # Appliers hold to the dates whoever signs: an early agreement.expired is inert.
    from ledger import services

    a = propose(delegates, terms=treaty_terms(until=TODAY + timedelta(days=3)))
    for who in ("fr", "de", "it"):
        sign(delegates, who, a)
    services.entry_append(
        signer=secretariat_signer(), kind="agreement.expired", payload={"agreement": str(a.id)}
    )
    a.refresh_from_db()
    assert a.state == "in_force"


def test_documents_are_stored_once_by_hash_and_read_only_by_those_concerned(delegates):
    doc = upload(delegates["fr"], b"data sharing text", "dsa.pdf")
    again = upload(delegates["de"], b"data sharing text", "other-name.pdf")
    assert again.sha256 == doc.sha256 and Document.objects.count() == 1
    assert doc.file.read() == b"data sharing text"
    assert readable_document(delegates["fr"], doc.sha256) is not None
    assert readable_document(delegates["aud"], doc.sha256) is not None
    assert readable_document(delegates["it"], doc.sha256) is None
    with pytest.raises(GovernanceError, match="secretariat or a member's signatory"):
        upload(delegates["rec_fr"], b"x")
    with pytest.raises(GovernanceError, match="no / or"):
        upload(delegates["fr"], b"x", "../../etc/passwd")


def test_every_seat_holder_reads_every_agreement_and_signs_only_its_own(delegates):
    # Agreements are the consortium's shared record: their terms are on the ledger.
    a = propose(delegates, terms=treaty_terms(parties=("FR", "DE")))
    for who in ("it", "rec_fr", "aud", "ops"):
        assert list(visible_agreements(delegates[who])) == [a]
    nobody = User.objects.create_user("nobody")
    assert list(visible_agreements(nobody)) == []
    assert [p.agreement for p in awaiting_signature(delegates["fr"])] == [a]
    assert list(awaiting_signature(delegates["it"])) == []
    assert list(awaiting_signature(delegates["rec_fr"])) == []
    assert readable_document(delegates["it"], a.document_sha256) is not None
    assert readable_document(nobody, a.document_sha256) is None


def test_a_proposal_with_the_same_idempotency_key_returns_the_same_agreement(delegates):
    a = propose(delegates, idempotency_key="treaty-1")
    b = propose(delegates, idempotency_key="treaty-1")
    assert a.id == b.id and Agreement.objects.count() == 1
    with pytest.raises(GovernanceError, match="used for another agreement"):
        propose(delegates, idempotency_key="treaty-1", terms=treaty_terms(parties=("FR", "DE")))


def test_one_party_cannot_replace_a_treaty_the_others_signed(delegates):
    a = propose(delegates, terms=treaty_terms(parties=("FR", "DE")))
    for who in ("fr", "de"):
        sign(delegates, who, a)
    alone = treaty_terms(parties=("FR", "DE"), required=["FR"])
    with pytest.raises(GovernanceError, match="make DE required parties"):
        propose(delegates, who="fr", terms=alone, supersedes=a)
    solo = {
        **treaty_terms(parties=("FR", "DE")),
        "parties": ["FR"],
        "cost_sharing": {"method": "scale", "shares": {"FR": "1"}},
    }
    with pytest.raises(GovernanceError, match="make DE required parties"):
        propose(delegates, who="fr", terms=solo, supersedes=a)


def test_an_amendment_needs_every_bound_party_even_one_that_acceded(delegates):
    a = propose(delegates, terms=treaty_terms(required=["FR", "DE"]))
    for who in ("fr", "de"):
        sign(delegates, who, a)
    b = propose(delegates, terms=treaty_terms(required=["FR", "DE"]), supersedes=a)
    sign(delegates, "it", a)  # Italy accedes to version 1 while version 2 is open
    for who in ("fr", "de"):
        sign(delegates, who, b)
    b.refresh_from_db()
    assert b.state == "signed"  # Italy is bound by version 1: version 2 waits for it
    sign(delegates, "it", b)
    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.state, b.state) == ("superseded", "in_force")


def test_terminating_a_treaty_ends_its_pending_amendment(delegates):
    a = propose(delegates)
    for who in ("fr", "de", "it"):
        sign(delegates, who, a)
    b = propose(delegates, terms=treaty_terms(start=TODAY + timedelta(days=3)), supersedes=a)
    p = proposals.proposal_open(
        actor=delegates["ops"],
        title="End it",
        actions=[{"type": "agreement.terminate", "agreement": str(a.id), "reason": "done"}],
        deadline=datetime.now(UTC) + timedelta(hours=1),
    )
    for who in ("fr", "de"):
        vote_cast(actor=delegates[who], proposal=p, choice="yes")
    decide_after_deadline(p)
    b.refresh_from_db()
    assert (b.state, b.closed_reason) == ("terminated", "the version it amends has ended")


def test_entries_by_the_wrong_keys_change_nothing(delegates):
    from ledger import services

    a = propose(delegates, terms=treaty_terms(start=TODAY + timedelta(days=3)))
    for who in ("fr", "de", "it"):
        sign(delegates, who, a)
    fr_key, _ = acting_signer(delegates["fr"])
    # France's key says the treaty is in force, and expired: only the secretariat's may.
    with on(TODAY + timedelta(days=3)):
        services.entry_append(
            signer=fr_key, kind="agreement.in_force", payload={"agreement": str(a.id)}
        )
    a.refresh_from_db()
    assert a.state == "signed"


def test_the_command_brings_due_agreements_into_force(delegates, capsys):
    from django.core.management import call_command

    a = propose(delegates, terms=treaty_terms(start=TODAY + timedelta(days=2)))
    for who in ("fr", "de", "it"):
        sign(delegates, who, a)
    with on(TODAY + timedelta(days=2)):
        call_command("consortium", "advance")
    assert "1 agreement(s) entered into force; 0 expired." in capsys.readouterr().out
    a.refresh_from_db()
    assert a.state == "in_force"
