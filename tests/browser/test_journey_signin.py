"""Signing in as people do: a newcomer sets up an authenticator app (or, on a phone, a
passkey) and keeps their recovery codes; later signs in with one of them; wrong
passwords lock a user name out; new recovery codes ask for the second factor again."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.steps import browser as steps
from tests.steps.browser import check_page, totp_code, type_code
from tests.steps.browser_people import new_person, second_factor_long_ago

CODE_LABEL = "Code from your authenticator app, or a recovery code"


def type_password(page, username: str, password: str) -> None:
    page.goto("/admin/login/?next=/admin/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()


def log_out(page) -> None:
    page.get_by_role("button", name="Log out").first.click()
    expect(page.get_by_role("heading", name="Logged out")).to_be_visible()
    check_page(page)


def recovery_codes(page) -> list[str]:
    expect(page.get_by_role("heading", name="Your recovery codes")).to_be_visible()
    expect(page.get_by_text("They are shown only now.")).to_be_visible()
    codes = page.locator("#recovery-codes ul.codes li").all_inner_texts()
    assert len(codes) == 10 and len(set(codes)) == 10, codes
    return codes


def test_a_newcomer_sets_up_an_app_and_later_signs_in_with_a_recovery_code(page, site, watch):
    password = new_person(site, "newcomer-app")
    type_password(page, "newcomer-app", password)

    # No device yet: the passkey is offered first, the app as the other way.
    expect(page.get_by_role("heading", name="Set up your second factor")).to_be_visible()
    expect(page.get_by_role("heading", name="Set up a passkey (recommended)")).to_be_visible()
    check_page(page)
    page.get_by_role("link", name="Use an authenticator app (TOTP)").click()

    expect(page.get_by_role("heading", name="Use an authenticator app")).to_be_visible()
    expect(page.locator(".qr svg")).to_be_visible()
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    check_page(page)
    # A code the app does not show is refused, and the person may try again.
    right = {totp_code(secret, step=s) for s in (-1, 0, 1)}
    wrong = next(c for c in ("123456", "654321", "111111", "222222") if c not in right)
    page.get_by_label("The six-digit code your app shows now").fill(wrong)
    page.get_by_role("button", name="Confirm").click()
    expect(
        page.get_by_text("That code does not match. Check the app and try again.")
    ).to_be_visible()
    check_page(page)
    # After a wrong code the device refuses any for a second (django-otp's throttling),
    # about the time a person takes to look at the app again.
    page.wait_for_timeout(1500)
    page.get_by_label("The six-digit code your app shows now").fill(totp_code(secret))
    page.get_by_role("button", name="Confirm").click()

    codes = recovery_codes(page)
    check_page(page)
    page.get_by_role("link", name="I have kept them: continue").click()
    expect(page).to_have_url(re.compile(r"/admin/$"))
    check_page(page)

    page.get_by_role("link", name="Security").click()
    expect(page.get_by_role("heading", name="Security", exact=True)).to_be_visible()
    expect(page.locator("#security tbody")).to_contain_text("Authenticator app")
    expect(page.locator("#codes-left")).to_have_text("10 recovery codes left.")
    check_page(page)
    log_out(page)

    # The phone is lost: a recovery code signs in, once.
    type_password(page, "newcomer-app", password)
    expect(page.get_by_role("heading", name="Confirm it is you")).to_be_visible()
    check_page(page)
    page.get_by_label(CODE_LABEL).fill(codes[0])
    page.get_by_role("button", name="Confirm").click()
    expect(page).to_have_url(re.compile(r"/admin/$"))
    expect(
        page.get_by_text("Recovery code used: 9 left. Make new ones on the Security page.")
    ).to_be_visible()
    check_page(page)
    log_out(page)

    type_password(page, "newcomer-app", password)
    page.get_by_label(CODE_LABEL).fill(codes[0])
    page.get_by_role("button", name="Confirm").click()
    expect(
        page.get_by_text(
            "That code is not valid, or was already used: each code works once (for the "
            "app's, wait for its next one). Try again."
        )
    ).to_be_visible()
    expect(page.get_by_role("heading", name="Confirm it is you")).to_be_visible()
    check_page(page)


def test_a_newcomer_sets_up_a_passkey_on_a_phone_and_signs_in_with_it(browser, site, watch):
    context = browser.new_context(
        base_url=site.url, viewport={"width": 375, "height": 800}, locale="en-GB"
    )
    try:
        phone = context.new_page()
        seen = steps.Watch()
        seen.attach(phone)
        steps.virtual_authenticator(phone)
        password = new_person(site, "newcomer-passkey")
        type_password(phone, "newcomer-passkey", password)

        expect(phone.get_by_role("heading", name="Set up your second factor")).to_be_visible()
        check_page(phone, narrow=True)
        phone.get_by_role("button", name="Set up a passkey").click()

        # The passkey is made (the phone holds it) and the first recovery codes are shown.
        recovery_codes(phone)
        assert len(steps.passkeys(phone)) == 1
        check_page(phone, narrow=True)
        phone.get_by_role("link", name="I have kept them: continue").click()
        expect(phone).to_have_url(re.compile(r"/admin/$"))
        check_page(phone, narrow=True)

        phone.get_by_role("link", name="Security").click()
        expect(phone.locator("#security tbody")).to_contain_text("Passkey")
        expect(phone.locator("#codes-left")).to_have_text("10 recovery codes left.")
        check_page(phone, narrow=True)
        log_out(phone)

        # Next time: the password, then the passkey, nothing to type.
        type_password(phone, "newcomer-passkey", password)
        expect(phone.get_by_role("heading", name="Use your passkey")).to_be_visible()
        check_page(phone, narrow=True)
        phone.get_by_role("button", name="Use my passkey").click()
        expect(phone).to_have_url(re.compile(r"/admin/$"))
        expect(phone.get_by_role("link", name="Security")).to_be_visible()
        check_page(phone, narrow=True)
        assert not seen.problems(), "\n".join(seen.problems())
    finally:
        context.close()


def test_wrong_passwords_lock_the_user_name_out_even_for_the_right_one(page, site, watch):
    password = new_person(site, "locked-out")
    for _attempt in range(4):
        type_password(page, "locked-out", "not the password")
        expect(page.get_by_text("Please enter the correct username and password")).to_be_visible()
    check_page(page)

    type_password(page, "locked-out", "not the password")
    expect(page.get_by_role("heading", name="Signing in is locked for a while")).to_be_visible()
    expect(page.get_by_text("Try again in 15 minutes.")).to_be_visible()
    check_page(page)

    type_password(page, "locked-out", password)
    expect(page.get_by_role("heading", name="Signing in is locked for a while")).to_be_visible()
    expect(
        page.get_by_text("If you did not try these passwords, tell the secretariat.")
    ).to_be_visible()
    check_page(page)


def test_new_recovery_codes_ask_for_the_second_factor_again(page, site, watch):
    steps.sign_in(page, site, "delegate-pt")
    page.get_by_role("link", name="Security").click()
    expect(page.locator("#security tbody")).to_contain_text("Authenticator app")
    check_page(page)

    # Signed in an hour ago: making new codes asks for the second factor first.
    second_factor_long_ago(site, page)
    page.get_by_role("link", name="Make new recovery codes").click()
    expect(page.get_by_role("heading", name="Confirm it is you again")).to_be_visible()
    expect(page.get_by_text("What you are about to do binds your member.")).to_be_visible()
    check_page(page)
    type_code(page, site, username="delegate-pt")

    expect(page.get_by_role("heading", name="New recovery codes")).to_be_visible()
    expect(page.get_by_text("those stop working")).to_be_visible()
    check_page(page)
    page.get_by_role("button", name="Make new recovery codes").click()
    recovery_codes(page)
    check_page(page)
    page.get_by_role("link", name="I have kept them: continue").click()
    expect(page.get_by_role("heading", name="Security", exact=True)).to_be_visible()
    expect(page.locator("#codes-left")).to_have_text("10 recovery codes left.")
    check_page(page)


def test_a_passkey_added_later_confirms_removing_the_app(page, site, watch):
    steps.virtual_authenticator(page)
    password = new_person(site, "two-devices")
    type_password(page, "two-devices", password)
    page.get_by_role("link", name="Use an authenticator app (TOTP)").click()
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    page.get_by_label("The six-digit code your app shows now").fill(totp_code(secret))
    page.get_by_role("button", name="Confirm").click()
    recovery_codes(page)
    page.get_by_role("link", name="I have kept them: continue").click()

    # On the Security page, a passkey is added beside the app.
    page.get_by_role("link", name="Security").click()
    page.get_by_role("button", name="Add a passkey").click()
    devices = page.locator("#security tbody")
    expect(devices).to_contain_text("Passkey")
    expect(devices).to_contain_text("Authenticator app")
    assert len(steps.passkeys(page)) == 1
    check_page(page)

    # An hour later the app goes; removing a device asks for the second factor again,
    # and the passkey gives it.
    second_factor_long_ago(site, page)
    devices.get_by_role("row").filter(has_text="Authenticator app").get_by_role(
        "link", name="Remove"
    ).click()
    expect(page.get_by_role("heading", name="Confirm it is you again")).to_be_visible()
    expect(page.get_by_role("heading", name="Use your passkey")).to_be_visible()
    check_page(page)
    page.get_by_role("button", name="Use my passkey").click()

    expect(page.get_by_role("heading", name="Remove a device")).to_be_visible()
    expect(page.get_by_text("Remove Authenticator app “authenticator app”?")).to_be_visible()
    check_page(page)
    page.get_by_role("button", name="Remove").click()

    expect(page.get_by_text("Authenticator app removed.")).to_be_visible()
    expect(devices).not_to_contain_text("Authenticator app")
    expect(devices).to_contain_text("Passkey")
    # The last device left cannot be removed.
    expect(devices.get_by_role("link", name="Remove")).to_have_count(0)
    check_page(page)


def test_a_link_to_a_proposal_leads_there_after_the_password_and_the_code(page, site, watch):
    austria = (
        site.manage(
            "shell",
            "-c",
            "from consortium.governance.models import Proposal; "
            "print(Proposal.objects.get(title='Admit Austria').pk)",
        )
        .strip()
        .splitlines()[-1]
    )
    # Finland's delegate follows a link to the proposal (from a notice, say).
    page.goto(f"/admin/consortium/proposal/{austria}/change/")
    expect(page.get_by_role("button", name="Log in")).to_be_visible()
    check_page(page)
    page.get_by_label("Username").fill("delegate-fi")
    page.get_by_label("Password").fill(site.demo["delegates_password"])
    page.get_by_role("button", name="Log in").click()

    expect(page.get_by_role("heading", name="Confirm it is you")).to_be_visible()
    expect(page.get_by_text("Your password was right.")).to_be_visible()
    check_page(page)
    type_code(page, site, username="delegate-fi")

    expect(page.get_by_role("heading", name="Admit Austria", level=1)).to_be_visible()
    expect(page.get_by_text("FI voted yes (ledger entry")).to_be_visible()
    check_page(page)
