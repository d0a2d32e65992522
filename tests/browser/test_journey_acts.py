"""Journeys of the acts that bind a member, as delegates do them in Chromium: Poland signs
the data-sharing agreement awaiting it and votes on the proposal awaiting its vote; a
delegate makes an API token on a phone, sees it once, uses it and revokes it; a delegate
of another member tries Poland's confirmation pages and another person's token, and is
refused without anything changing.

Poland's two acts are one journey (one person, whose authenticator-app codes are each
accepted once); the other journeys sign in people made for them, so that the order of the
journeys does not matter.
"""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from tests.steps.browser import Watch, check_page, make_person, sign_in, type_code

AGREEMENT = "Public-sector text corpora (FI, NL, PL)"
LISTED = f"{AGREEMENT} (v1)"  # as the dashboard lists it, with its version
PROPOSAL = "Admit Austria"
HASH = re.compile(r"^[0-9a-f]{64}$")

# The periods of the authenticator app in which the journeys of this file used the codes
# of the demo's own people: a later journey signing the same person in (the smoke journey
# signs Poland in) needs a code of a later period. (The people made here are no one
# else's.)
_codes_used: dict[str, int] = {}


@pytest.fixture(scope="module", autouse=True)
def _codes_fresh_for_later_journeys():
    yield
    if _codes_used:
        last = max(_codes_used.values())
        while int(time.time()) // 30 <= last:
            time.sleep(0.5)


def _used(site, username: str, period: int) -> None:
    if username in site.demo["delegates"].values() or username == site.demo["admin"]["username"]:
        _codes_used[username] = max(period, _codes_used.get(username, period))


def _signed_in(page, site, username: str) -> None:
    sign_in(page, site, username)
    _used(site, username, int(time.time()) // 30)


def _past_stepup(page, site, username: str) -> None:
    """An act that binds the member asks for the second factor again unless one was used
    in the last minutes (it was: at sign-in). If the step-up page appears all the same,
    the next period's code (a code once used is refused)."""
    if "/step-up/" in page.url:
        check_page(page)
        type_code(page, site, step=1)
        _used(site, username, int(time.time()) // 30 + 1)


def test_poland_signs_the_agreement_and_votes_on_the_proposal_awaiting_it(page, site, watch):
    assert f"signing {AGREEMENT}" in site.demo["awaiting_poland"]
    assert f"a vote on {PROPOSAL}" in site.demo["awaiting_poland"]
    _signed_in(page, site, "delegate-pl")

    # The dashboard lists what awaits Poland.
    pending = page.locator("#pending-work")
    expect(pending.get_by_role("heading")).to_have_text("Awaiting PL")
    expect(pending.get_by_role("link", name=LISTED, exact=True)).to_be_visible()
    expect(pending.get_by_role("link", name=PROPOSAL, exact=True)).to_be_visible()
    check_page(page)

    # --- the agreement, read as a document, then signed ---------------------------------
    pending.get_by_role("link", name=LISTED, exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(AGREEMENT)
    parties = page.locator(".document table").first
    for name in ("Finland (FI)", "Netherlands (NL)", "Poland (PL)"):
        expect(parties).to_contain_text(name)
    poland = parties.locator("tr").filter(has_text="(PL)")
    expect(poland).to_contain_text("not signed yet")
    expect(parties.locator("tr").filter(has_text="(FI)")).to_contain_text("signed")
    duo = page.locator("table.duo")
    expect(duo).to_contain_text("DUO:0000042")
    expect(duo.get_by_text("general research use", exact=False).first).to_be_visible()
    terms_hash = page.locator("dd code.hash").nth(1).inner_text()
    document_hash = page.locator("dd code.hash").first.inner_text()
    assert HASH.match(terms_hash) and HASH.match(document_hash)
    check_page(page)

    page.get_by_role("link", name="Sign", exact=True).click()
    _past_stepup(page, site, "delegate-pl")
    expect(page).to_have_url(re.compile(r"/admin/consortium/agreement/[0-9a-f-]+/sign/$"))
    confirm = page.locator(".confirm")
    expect(confirm).to_contain_text(f"You are signing {AGREEMENT} on behalf of Poland (PL).")
    expect(confirm).to_contain_text("This signature goes on the ledger under Poland's key")
    expect(confirm.locator("code.hash").nth(1)).to_have_text(terms_hash)
    expect(confirm.locator("code.hash").nth(2)).to_have_text(document_hash)
    # What is signed, in words, below the confirmation.
    expect(page.locator("table.duo")).to_contain_text("general research use")
    check_page(page)

    page.get_by_role("button", name="Sign for PL").click()
    success = page.locator(".messagelist .success")
    expect(success).to_contain_text(
        re.compile(rf"Signed {re.escape(LISTED)} for PL: ledger entry \d+\.")
    )
    entry = re.search(r"ledger entry (\d+)", success.inner_text()).group(1)
    expect(page.get_by_role("heading", level=1)).to_have_text(AGREEMENT)
    poland = page.locator(".document table").first.locator("tr").filter(has_text="(PL)")
    expect(poland.locator("td").nth(1)).to_have_text("signed")
    expect(poland.locator("td").nth(4)).to_have_text(entry)
    expect(page.get_by_role("link", name="Sign", exact=True)).to_have_count(0)
    check_page(page)

    page.get_by_role("link", name="Dashboard").click()
    pending = page.locator("#pending-work")
    expect(pending.get_by_role("link", name=LISTED, exact=True)).to_have_count(0)
    expect(pending).to_contain_text("Nothing to sign.")
    check_page(page)

    # --- the proposal: the rule and the tally, then Poland's vote ------------------------
    pending.get_by_role("link", name=PROPOSAL, exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(PROPOSAL)
    expect(page.get_by_role("heading", name="The rule")).to_be_visible()
    tally = page.locator("table.tally")
    expect(tally.locator("tr").filter(has_text="(PL)")).to_contain_text("not yet")
    expect(tally.locator("tfoot")).to_contain_text("4 yes, 0 no, 1 abstain (5 of 6 voted)")
    expect(page.locator(".meta .state")).to_have_text("open")
    check_page(page)

    page.get_by_role("link", name="Yes", exact=True).click()
    _past_stepup(page, site, "delegate-pl")
    expect(page).to_have_url(re.compile(r"/admin/consortium/proposal/[0-9a-f-]+/vote/yes/$"))
    confirm = page.locator(".confirm")
    expect(confirm).to_contain_text(f"You are voting YES on behalf of Poland on: {PROPOSAL}.")
    expect(confirm).to_contain_text("This vote goes on the ledger under Poland's key")
    check_page(page)

    page.get_by_role("button", name="Confirm: yes").click()
    success = page.locator(".messagelist .success")
    expect(success).to_contain_text(re.compile(rf"PL voted yes on {PROPOSAL}: ledger entry \d+\."))
    entry = re.search(r"ledger entry (\d+)", success.inner_text()).group(1)
    expect(page.locator("p.confirm")).to_contain_text(f"PL voted yes (ledger entry {entry},")
    tally = page.locator("table.tally")
    expect(tally.locator("tr").filter(has_text="(PL)").locator("td").nth(2)).to_have_text("yes")
    expect(tally.locator("tfoot")).to_contain_text("5 yes, 0 no, 1 abstain (6 of 6 voted)")
    # Open until its deadline, whatever the tally says: the state reads as it stands.
    expect(page.locator(".meta .state")).to_have_text(re.compile(r"^(open|accepted)$"))
    expect(page.get_by_role("link", name="Yes", exact=True)).to_have_count(0)
    check_page(page)

    page.get_by_role("link", name="Dashboard").click()
    pending = page.locator("#pending-work")
    expect(pending.get_by_role("link", name=PROPOSAL, exact=True)).to_have_count(0)
    expect(pending).to_contain_text("No vote awaited.")
    check_page(page)


def test_on_a_phone_a_delegate_makes_an_api_token_uses_it_and_revokes_it(browser, site, playwright):
    person = make_person(site, "token-maker-se", member="SE")
    context = browser.new_context(
        base_url=site.url, viewport={"width": 375, "height": 800}, locale="en-GB"
    )
    page = context.new_page()
    seen = Watch()
    seen.attach(page)
    # The partner system: no browser, no session, only the token.
    partner = playwright.request.new_context(base_url=site.url)
    try:
        _signed_in(page, site, person)
        check_page(page, narrow=True)

        page.locator(".nav-extra").get_by_role("link", name="API tokens").click()
        expect(page.get_by_role("heading", level=1)).to_contain_text("API token")
        check_page(page, narrow=True)

        page.goto("/admin/consortium/apitoken/new/")
        _past_stepup(page, site, person)
        expect(page.get_by_role("heading", level=1)).to_have_text("New API token")
        expect(page.locator("#content")).to_contain_text("The token acts as you, with your seat")
        check_page(page, narrow=True)
        page.get_by_label("Name").fill("Swedish archive sync")
        page.get_by_label("Expires in (days)").fill("7")
        page.get_by_role("button", name="Make the token").click()

        expect(page.get_by_role("heading", level=1)).to_have_text("Your new API token")
        expect(page.locator("#new-token")).to_contain_text("it is shown only this once")
        secret = page.locator("#token-plaintext").inner_text().strip()
        assert len(secret) > 20 and " " not in secret
        check_page(page, narrow=True)

        answer = partner.get(
            "/api/v1/delegates/self", headers={"Authorization": f"Bearer {secret}"}
        )
        assert answer.status == 200, answer.text()
        seat = answer.json()
        assert seat["member"] == "SE" and seat["role"] == "signatory", seat
        assert seat["token"] is not None, seat
        key_id = seat["token"]["key_id"]

        # The list shows it, never its secret, with the link to revoke it.
        page.get_by_role("link", name="Back to your API tokens").click()
        row = page.locator("#result_list tbody tr").filter(has_text="Swedish archive sync")
        expect(row).to_have_count(1)
        expect(row).to_contain_text(key_id)
        expect(page.locator("#content")).not_to_contain_text(secret)
        check_page(page, narrow=True)

        row.get_by_role("link", name="Revoke…").click()
        _past_stepup(page, site, person)
        expect(page.locator("#content")).to_contain_text(
            f"Revoke the token “Swedish archive sync” ({key_id}) of {person}?"
        )
        check_page(page, narrow=True)
        page.get_by_role("button", name="Yes, revoke it").click()

        expect(page.locator(".messagelist .success")).to_contain_text(
            f"Revoked the token Swedish archive sync ({key_id})."
        )
        row = page.locator("#result_list tbody tr").filter(has_text="Swedish archive sync")
        expect(row.get_by_role("link", name="Revoke…")).to_have_count(0)
        expect(row).to_contain_text(re.compile(r"\d{1,2} [A-Z][a-z]{2} \d{4}"))
        check_page(page, narrow=True)

        answer = partner.get(
            "/api/v1/delegates/self", headers={"Authorization": f"Bearer {secret}"}
        )
        assert answer.status == 401, answer.text()
    finally:
        partner.dispose()
        context.close()
    assert not seen.problems(), "\n".join(seen.problems())


def test_a_delegate_of_another_member_is_refused_polands_acts_and_anothers_token(
    page, site, watch, playwright
):
    # Portugal's second signatory: Portugal is no party to the agreement and has voted.
    person = make_person(site, "other-signatory-pt", member="PT")
    token = site.manage(
        "shell",
        "-c",
        "from consortium.governance.models import ApiToken\n"
        "t = ApiToken.objects.get(user__username='delegate-se')\n"
        "print(f'{t.pk}:{t.key_id}')",
    )
    token, key_id = token.strip().splitlines()[-1].split(":", 1)
    _signed_in(page, site, person)

    # What Poland sees, read before: its signature and its vote, whatever they are now.
    page.get_by_role("link", name="Agreements").first.click()
    page.get_by_role("link", name=AGREEMENT, exact=True).click()
    agreement_url = page.url
    poland_signature = page.locator(".document table").first.locator("tr").filter(has_text="(PL)")
    signature_before = poland_signature.locator("td").all_inner_texts()
    expect(page.get_by_role("link", name="Sign", exact=True)).to_have_count(0)
    check_page(page)

    page.goto("/admin/consortium/proposal/")
    page.get_by_role("link", name=PROPOSAL, exact=True).click()
    proposal_url = page.url
    tally = page.locator("table.tally")
    poland_vote = tally.locator("tr").filter(has_text="(PL)").locator("td")
    vote_before = poland_vote.all_inner_texts()
    tally_before = tally.locator("tfoot th").all_inner_texts()
    check_page(page)

    # Poland's confirmation of its signature: refused, before anything is shown.
    refused = page.goto(agreement_url.replace("/change/", "/sign/"))
    assert refused.status == 403
    expect(page.get_by_role("heading", level=1)).to_have_text("You may not do this")
    expect(page.get_by_text("Nothing was changed.")).to_be_visible()
    expect(page.locator("body")).not_to_contain_text("You are signing")
    check_page(page)

    # The vote's confirmation: Portugal's own vote, already cast; nothing is asked.
    page.goto(proposal_url.replace("/change/", "/vote/no/"))
    expect(page.locator(".messagelist .warning")).to_contain_text(
        "PT cannot vote on this proposal now: it has voted"
    )
    expect(page.get_by_role("button", name=re.compile("^Confirm"))).to_have_count(0)
    check_page(page)

    # Another person's token: no such token, as far as this person may know.
    page.goto(f"/admin/consortium/apitoken/{token}/revoke/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("404")
    expect(page.get_by_role("button", name="Yes, revoke it")).to_have_count(0)
    check_page(page)

    # Nothing changed: Poland's signature and vote, the tally, the token.
    page.goto(agreement_url)
    expect(poland_signature.locator("td")).to_have_text(signature_before)
    page.goto(proposal_url)
    expect(poland_vote).to_have_text(vote_before)
    expect(tally.locator("tfoot th")).to_have_text(tally_before)
    check_page(page)
    # The token still answers for its partner system.
    partner = playwright.request.new_context(base_url=site.url)
    try:
        bearer = {"Authorization": f"Bearer {site.demo['tokens']['SE']}"}
        answer = partner.get("/api/v1/delegates/self", headers=bearer)
        assert answer.status == 200, answer.text()
        assert answer.json()["token"]["key_id"] == key_id
    finally:
        partner.dispose()
