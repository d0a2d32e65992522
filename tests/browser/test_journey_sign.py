"""Signing as members do, beyond what awaits Poland (tests/browser/test_journey_acts.py):
Sweden, no party to the data-sharing agreement, refused its signing page; Czechia signing
an agreement of its own after a step-up, then withdrawing from it with a reason."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.steps.browser import check_page, sign_in

DSA = "Public-sector text corpora (FI, NL, PL)"


def test_sweden_is_no_party_to_the_data_sharing_agreement_and_cannot_sign_it(page, site, watch):
    sign_in(page, site, "delegate-se")
    expect(page.locator("#pending-work")).to_contain_text("Nothing to sign.")
    check_page(page)

    # The address of the signing page, typed or passed on by someone, refuses Sweden.
    dsa = (
        site.manage(
            "shell",
            "-c",
            "from consortium.governance.models import Agreement; "
            f"print(Agreement.objects.get(title={DSA!r}).pk)",
        )
        .strip()
        .splitlines()[-1]
    )
    refused = page.goto(f"/admin/consortium/agreement/{dsa}/sign/")
    assert refused.status == 403
    expect(page.get_by_role("heading", name="You may not do this")).to_be_visible()
    expect(page.get_by_text("Nothing was changed.")).to_be_visible()
    expect(page.get_by_role("button", name="Sign for SE")).to_have_count(0)
    check_page(page)


SPEECH = "Speech corpora (CZ, PT)"


def propose_speech_corpora(site) -> str:
    """The secretariat proposes an agreement of Czechia and Portugal only (this journey's
    own): its id."""
    out = site.manage(
        "shell",
        "-c",
        "from datetime import date; "
        "from django.contrib.auth import get_user_model; "
        "from consortium.governance import agreements; "
        "from consortium.governance.documents import document_store; "
        "from consortium.management.commands import _demo_data as demo; "
        "admin = get_user_model().objects.get(username='admin'); "
        "doc = document_store(actor=admin, name='speech.txt', media_type='text/plain', "
        "content=b'The parties share their speech corpora for training.'); "
        "terms = demo.dsa_terms(date.today().isoformat()); "
        "terms.update(parties=['CZ', 'PT']); terms['data_use']['residency'] = 'CZ'; "
        f"a = agreements.agreement_propose(actor=admin, kind='data_sharing', title={SPEECH!r}, "
        "document_sha256=doc.sha256, terms=terms); print(a.pk)",
    )
    return out.strip().splitlines()[-1]


def test_czechia_signs_a_new_agreement_then_withdraws_from_it_with_a_reason(page, site, watch):
    propose_speech_corpora(site)
    sign_in(page, site, "delegate-cz")
    awaiting = page.locator("#pending-work")
    awaiting.get_by_role("row", name=SPEECH).get_by_role("link", name="Read and sign").click()
    page.get_by_role("link", name="Sign", exact=True).click()
    expect(page.get_by_text(f"You are signing {SPEECH} on behalf of Czechia (CZ).")).to_be_visible()
    page.get_by_role("button", name="Sign for CZ").click()
    expect(page.get_by_text(f"Signed {SPEECH} (v1) for CZ: ledger entry")).to_be_visible()
    # Portugal has not signed yet: the agreement still collects signatures.
    expect(page.locator(".document table").first).to_contain_text("not signed yet")
    check_page(page)

    page.get_by_role("link", name="Withdraw").click()
    expect(page.get_by_role("heading", name=f"Withdraw from {SPEECH}")).to_be_visible()
    expect(page.get_by_text(f"You are withdrawing Czechia (CZ) from {SPEECH}.")).to_be_visible()
    check_page(page)
    # A withdrawal says why, for every member to read (the browser asks for the reason).
    expect(page.get_by_text("Goes on the ledger with the withdrawal")).to_be_visible()
    expect(page.get_by_label("Reason")).to_have_attribute("required", "")
    page.get_by_label("Reason").fill("Our ministry's lawyers have not cleared the residency.")
    page.get_by_role("button", name="Withdraw CZ").click()

    expect(page.get_by_text(f"CZ withdrew from {SPEECH} (v1): ledger entry")).to_be_visible()
    parties = page.locator(".document table").first
    expect(parties).to_contain_text("withdrawn")
    expect(parties).to_contain_text("Our ministry's lawyers have not cleared the residency.")
    expect(page.get_by_role("link", name="Withdraw")).to_have_count(0)
    check_page(page)
