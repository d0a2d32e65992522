"""A delegate of Poland opens the demo: the home page lists what awaits Poland."""

from playwright.sync_api import expect

from tests.steps.browser import check_page, sign_in


def test_a_delegate_sees_what_awaits_their_member(page, site, watch):
    sign_in(page, site, "delegate-pl")
    expect(page.locator("#pending-work")).to_contain_text("Awaiting")
    check_page(page)
