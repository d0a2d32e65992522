"""Members' delegates hear by e-mail what awaits or concerns their member, once it is
recorded: a signature awaited (an agreement proposed with it as a party), a vote awaited
(a proposal opened), a proposal decided (every member), a dispute of its contribution,
a download refused. People: the delegates' and LUMI's worlds (tests/personas.py); each
holder of a member's seat has an address, and another member's delegates, the
secretariat and the auditor hear nothing that is not theirs."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import mail

from consortium.access import downloads
from consortium.governance.changes import GovernanceError
from contributions.disputes import contribution_dispute
from contributions.funds import funds_confirm, funds_contribute
from tests.steps.contributions import paid_under_a_treaty
from tests.steps.governance import decide_after_deadline, open_proposal, propose, treaty_terms


@pytest.fixture(autouse=True)
def addresses(db):
    """Everyone's address is their username at example.org (set once they exist)."""

    def give():
        for user in get_user_model().objects.filter(email=""):
            user.email = f"{user.username}@example.org"
            user.save(update_fields=["email"])

    return give


def received(subject_part: str) -> set[str]:
    """The usernames who received a message whose subject holds ``subject_part``."""
    return {to.split("@")[0] for m in mail.outbox if subject_part in m.subject for to in m.to}


def test_the_parties_delegates_are_asked_to_sign_and_no_one_else(
    delegates, addresses, django_capture_on_commit_callbacks
):
    addresses()
    with django_capture_on_commit_callbacks(execute=True):
        agreement = propose(delegates, terms=treaty_terms(parties=("FR", "DE")))
    assert received("Signature awaited") == {"fr", "rec_fr", "de", "rec_de", "obs_de"}
    message = next(m for m in mail.outbox if m.to == ["fr@example.org"])
    assert agreement.title in message.body
    assert f"{settings.SITE_URL}/admin/consortium/agreement/{agreement.pk}/change/" in message.body
    # One message per address: no delegate learns another's.
    assert all(len(m.to) == 1 and not m.cc and not m.bcc for m in mail.outbox)


def test_nothing_is_sent_before_the_entry_is_committed(delegates, addresses):
    addresses()
    propose(delegates, terms=treaty_terms(parties=("FR", "DE")))
    assert mail.outbox == []


def test_every_member_that_may_vote_is_asked_then_told_the_outcome(
    delegates, addresses, django_capture_on_commit_callbacks
):
    addresses()
    with django_capture_on_commit_callbacks(execute=True):
        proposal = open_proposal(delegates)
    voters = {"fr", "rec_fr", "de", "rec_de", "obs_de", "it"}
    assert received("Vote awaited") == voters
    body = next(m for m in mail.outbox if m.to == ["it@example.org"]).body
    assert f"/admin/consortium/proposal/{proposal.pk}/change/" in body
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        decide_after_deadline(proposal)
    assert received("Proposal") == voters
    assert "ops" not in received("Proposal") and "aud" not in received("Proposal")


def test_the_member_whose_contribution_is_disputed_is_told(
    lumi, addresses, django_capture_on_commit_callbacks
):
    paid_under_a_treaty(lumi)
    people = lumi["people"]
    contribution = funds_contribute(
        actor=people["rec_se"], amount="10", currency="EUR", date_paid="2026-01-01"
    )
    funds_confirm(actor=people["ops"], contribution=contribution)
    addresses()
    with django_capture_on_commit_callbacks(execute=True):
        contribution_dispute(actor=people["sig_fi"], contribution=contribution, reason="no trace")
    assert received("disputed") == {"rec_se", "sig_se"}
    body = next(m for m in mail.outbox if m.to == ["sig_se@example.org"]).body
    assert "FI disputes" in body and "no trace" in body


def test_a_refused_download_is_told_to_the_members_delegates_without_a_secret(
    lumi, checkpoint, addresses, django_capture_on_commit_callbacks
):
    addresses()
    # The Netherlands (ratio 0.448) is under the embargo for the full weights.
    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(GovernanceError, match="denied"),
    ):
        downloads.download_authorize(actor=lumi["people"]["sig_nl"], checkpoint=checkpoint)
    assert received("Download refused") == {"sig_nl", "obs_nl"}
    body = next(m for m in mail.outbox if m.to == ["obs_nl@example.org"]).body
    assert "embargoed until" in body
    assert f"/admin/consortium/modelcheckpoint/{checkpoint.digest}/access/" in body
    # An allowed download mails nothing, and its token never leaves in a message.
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        _, token = downloads.download_authorize(
            actor=lumi["people"]["rec_se"], checkpoint=checkpoint
        )
    assert all(token not in m.body for m in mail.outbox)
    assert received("Download refused") == set()


def test_a_delegate_without_an_address_or_whose_seat_is_vacated_hears_nothing(
    delegates, addresses, django_capture_on_commit_callbacks
):
    from consortium.governance.seats import seat_vacate
    from consortium.governance.selectors import seat_of

    addresses()
    get_user_model().objects.filter(username="rec_fr").update(email="")
    seat_vacate(actor=delegates["ops"], seat=seat_of(delegates["obs_de"]), reason="left")
    with django_capture_on_commit_callbacks(execute=True):
        propose(delegates, terms=treaty_terms(parties=("FR", "DE")))
    assert received("Signature awaited") == {"fr", "de", "rec_de"}


def test_notices_are_written_in_the_sites_language_whatever_the_delegates(
    delegates, addresses, django_capture_on_commit_callbacks, settings
):
    """A French-speaking delegate's act (its request in French) sends notices in
    LANGUAGE_CODE: English here; in French once the site's language is French."""
    from django.utils import translation

    addresses()
    with translation.override("fr"), django_capture_on_commit_callbacks(execute=True):
        propose(delegates, terms=treaty_terms(parties=("FR", "DE")))
    assert received("Signature awaited") == {"fr", "rec_fr", "de", "rec_de", "obs_de"}
    assert not received("Signature attendue")
    mail.outbox.clear()
    settings.LANGUAGE_CODE = "fr"
    with django_capture_on_commit_callbacks(execute=True):
        agreement = propose(delegates, terms=treaty_terms(parties=("FR", "DE")))
    assert received("Signature attendue") == {"fr", "rec_fr", "de", "rec_de", "obs_de"}
    message = next(m for m in mail.outbox if m.to == ["fr@example.org"])
    assert f"« {agreement.title} »" in message.body and "proposé avec votre membre" in message.body
