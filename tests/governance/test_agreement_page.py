"""The agreement's page in the admin, read as a document, and signing from it: what a
delegate sees, who gets a Sign button, the confirmation, and who is refused.

France's, Germany's and Italy's signatories (fr, de, it) sign for their own member only;
Germany's recorder (rec_de) and observer read and sign nothing; the secretariat (ops)
proposes and signs nothing."""

from __future__ import annotations

from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from consortium.governance.agreements_admin import AgreementAdmin
from consortium.governance.changes import member_hosted_key
from consortium.governance.in_words import DUO_MEANINGS
from consortium.governance.models import AgreementParty
from consortium.governance.terms import DUO_MODIFIERS, DUO_PERMISSIONS
from consortium.web import stepup
from ledger.services import Entry
from tests import worlds
from tests.steps.governance import TODAY, propose, treaty_terms
from tests.steps.signin import sign_in

delegates = worlds.shared("delegates")

CHANGELIST = "/admin/consortium/agreement/"


def page(a):
    return f"{CHANGELIST}{a.id}/change/"


def sign_url(a):
    return f"{CHANGELIST}{a.id}/sign/"


def data_sharing(delegates):
    """A data-sharing agreement between France and Germany: general research use, with
    publication required and a geographical restriction to the EU."""
    return propose(
        delegates,
        kind="data_sharing",
        terms={
            "parties": ["FR", "DE"],
            "effective": {"from": TODAY.isoformat(), "until": None},
            "data_use": {
                "permission": "DUO:0000042",
                "modifiers": ["DUO:0000019", {"code": "DUO:0000022", "region": "EU"}],
                "access_mode": "federated",
            },
        },
    )


def test_the_page_reads_as_a_document_with_parties_shares_and_hashes(client, delegates):
    a = propose(delegates)
    sign_in(client, delegates["obs_de"])
    body = client.get(page(a)).content.decode()
    assert "Founding treaty" in body
    for party in ("France (FR)", "Germany (DE)", "Italy (IT)"):
        assert party in body
    assert body.count("not signed yet") == 3
    # France's share in words and in percent; the accounting unit by name.
    assert "pays 30% of the fixed cost" in body and "45%" in body
    assert "Euro (EUR)" in body
    assert a.terms_sha256 in body and a.document_sha256 in body
    assert f"{CHANGELIST}{a.id}/document/" in body
    assert "treaty.pdf" in body
    # The raw terms stay for experts, folded away.
    assert "<details>" in body and "&quot;accounting_unit&quot;: &quot;EUR&quot;" in body
    # No microseconds, no ISO timestamps: the effective period is a day for people.
    assert TODAY.strftime("%Y") in body and f"{TODAY.isoformat()}T" not in body
    # An observer signs nothing: no button.
    assert sign_url(a) not in body


def test_data_use_terms_are_shown_with_their_duo_labels_and_meanings(client, delegates):
    a = data_sharing(delegates)
    sign_in(client, delegates["fr"])
    body = client.get(page(a)).content.decode()
    for code, label in (
        ("DUO:0000042", DUO_PERMISSIONS["DUO:0000042"]),
        ("DUO:0000019", DUO_MODIFIERS["DUO:0000019"]),
        ("DUO:0000022", DUO_MODIFIERS["DUO:0000022"]),
    ):
        assert code in body and label in body
        assert str(DUO_MEANINGS[code]) in body
    assert "general research use" in body
    assert "region: the European Union" in body
    assert "federated" in body


def test_every_accepted_duo_code_has_a_meaning(delegates):
    assert set(DUO_MEANINGS) == set(DUO_PERMISSIONS) | set(DUO_MODIFIERS)


def test_the_sign_button_shows_only_for_a_party_that_has_not_signed(client, delegates):
    a = propose(delegates, terms=treaty_terms(parties=("FR", "DE")))
    for who, sees in (("fr", True), ("de", True), ("it", False), ("rec_de", False), ("ops", False)):
        sign_in(client, delegates[who])
        assert (sign_url(a) in client.get(page(a)).content.decode()) is sees, who


def test_the_confirmation_shows_the_terms_in_words_both_hashes_and_the_key(client, delegates):
    a = propose(delegates)
    sign_in(client, delegates["fr"])
    body = client.get(sign_url(a)).content.decode()
    assert "You are signing" in body and "on behalf of <strong>" in body and "(FR)" in body
    assert "pays 30% of the fixed cost" in body
    assert a.terms_sha256 in body and a.document_sha256 in body
    assert "goes on the ledger under" in body and "key id" in body
    assert member_hosted_key("FR").fingerprint in body
    # Showing the confirmation writes nothing.
    assert not AgreementParty.objects.get(agreement=a, member="FR").signed_in


def test_confirming_signs_once_on_the_ledger(client, delegates):
    a = propose(delegates)
    sign_in(client, delegates["fr"])
    form = {"terms_sha256": a.terms_sha256, "document_sha256": a.document_sha256}
    before = Entry.objects.count()
    done = client.post(sign_url(a), form, follow=True)
    party = AgreementParty.objects.get(agreement=a, member="FR")
    assert party.signed_in is not None
    signed = Entry.objects.get(index=party.signed_in)
    assert signed.kind == "agreement.signed" and Entry.objects.count() == before + 1
    body = done.content.decode()
    assert f"ledger entry {party.signed_in}" in body
    assert body.count("not signed yet") == 2 and sign_url(a) not in body
    # A second POST (a double click, a reload) signs nothing more.
    again = client.post(sign_url(a), form, follow=True)
    assert Entry.objects.count() == before + 1
    assert "cannot sign" in again.content.decode()


def test_a_confirmation_over_other_hashes_signs_nothing(client, delegates):
    a = propose(delegates)
    sign_in(client, delegates["de"])
    before = Entry.objects.count()
    client.post(sign_url(a), {"terms_sha256": "0" * 64, "document_sha256": a.document_sha256})
    assert Entry.objects.count() == before
    assert not AgreementParty.objects.get(agreement=a, member="DE").signed_in


def test_another_members_delegate_is_refused_and_nothing_is_written(client, delegates):
    a = propose(delegates, terms=treaty_terms(parties=("FR", "DE")))
    form = {"terms_sha256": a.terms_sha256, "document_sha256": a.document_sha256}
    before = Entry.objects.count()
    for who in ("it", "rec_de", "ops"):
        sign_in(client, delegates[who])
        # Italy is no party: it reads the agreement (every seat holder does) but may not sign.
        assert client.get(page(a)).status_code == 200
        assert client.get(sign_url(a)).status_code == 403, who
        refused = client.post(sign_url(a), form)
        assert refused.status_code == 403, who
        # A page in the site's own frame that says what happened, not a bare "Forbidden".
        assert "You may not do this" in refused.content.decode()
        assert "Nothing was changed." in refused.content.decode()
    assert Entry.objects.count() == before


def test_without_a_recent_second_factor_the_sign_view_asks_for_one(client, delegates):
    # The step-up page is asked for, and the view itself never runs: nothing is signed.
    a = propose(delegates)
    sign_in(client, delegates["fr"], stepped_up=False)
    form = {"terms_sha256": a.terms_sha256, "document_sha256": a.document_sha256}
    r = client.post(sign_url(a), form)
    assert r.status_code == 302
    assert r["Location"].startswith(reverse("stepup") + "?next=")
    assert not AgreementParty.objects.get(agreement=a, member="FR").signed_in


def test_signing_and_withdrawing_are_wrapped_in_the_step_up_contract():
    wrapper = stepup.stepup_required(lambda request: None).__code__
    for view in (AgreementAdmin.sign_view, AgreementAdmin.withdraw_view):
        assert view.__code__ is wrapper and view.__wrapped__.__name__ in (
            "sign_view",
            "withdraw_view",
        )


def test_the_list_sign_action_leads_to_the_confirmation(client, delegates):
    a = propose(delegates)
    sign_in(client, delegates["fr"])
    r = client.post(CHANGELIST, {"action": "sign", ACTION_CHECKBOX_NAME: [str(a.id)]})
    assert r.status_code == 302 and r["Location"] == sign_url(a)
    assert not AgreementParty.objects.get(agreement=a, member="FR").signed_in


def test_withdrawing_asks_for_a_reason_and_confirms(client, delegates):
    a = propose(delegates)
    sign_in(client, delegates["it"])
    url = f"{CHANGELIST}{a.id}/withdraw/"
    assert "You are withdrawing" in client.get(url).content.decode()
    client.post(url, {"reason": "parliament did not ratify"})
    party = AgreementParty.objects.get(agreement=a, member="IT")
    assert party.withdrawn_in is not None
    assert "parliament did not ratify" in client.get(page(a)).content.decode()


def test_moments_and_figures_are_written_for_people():
    from datetime import UTC, datetime, timedelta
    from decimal import Decimal

    from consortium.governance.in_words import number, percent, time_left, when

    assert when("2026-12-05T14:03:27.123456Z") == "5 Dec 2026, 14:03 UTC"
    assert number("1234567") == "1,234,567" and number("137.150") == "137.15"
    assert percent(Decimal("0.3")) == "30%" and percent(Decimal(127) / 211) == "60.19%"
    now = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
    assert time_left(now + timedelta(days=2, hours=3), now) == "2 d 3 h left"
    assert time_left(now + timedelta(minutes=25), now) == "25 min left"
    assert time_left(now - timedelta(seconds=1), now) == "the deadline has passed"
