"""The dashboard on a phone (375 px wide), in Debian's chromium: nothing overflows the
page sideways, and the cost-share chart shrinks to its box with every label inside it.

The page is rendered by Django's test client first; the browser is then given it, and its
stylesheets from the static files finders: no server, no second database connection."""

from __future__ import annotations

import contextlib
import mimetypes
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from playwright import sync_api

from tests import worlds
from tests.steps.browser import need_chromium
from tests.steps.signin import sign_in

ORIGIN = "http://testserver"
# The texts of the first chart that end to the right of its box (cut off on screen).
LABELS_OUTSIDE = """() => {
  const svg = document.querySelector('.cost-share-chart');
  const box = svg.getBoundingClientRect();
  return [...svg.querySelectorAll('text')]
    .filter(t => t.getBoundingClientRect().right > box.right + 0.5)
    .map(t => t.textContent);
}"""

lumi, checkpoint = (worlds.shared(n, world="published") for n in ("lumi", "checkpoint"))


@pytest.fixture
def phone(db):
    """Open an admin page, rendered beforehand, in a 375 px wide chromium."""
    chromium = need_chromium()
    pages: dict[str, bytes] = {}

    def answer(route):
        path = route.request.url.removeprefix(ORIGIN)
        if path in pages:
            return route.fulfill(status=200, body=pages[path], content_type="text/html")
        found = path.startswith("/static/") and finders.find(
            path.removeprefix("/static/").split("?")[0]
        )
        if not found:
            return route.fulfill(status=404, body="")
        kind = mimetypes.guess_type(found)[0] or "application/octet-stream"
        return route.fulfill(status=200, body=Path(found).read_bytes(), content_type=kind)

    with contextlib.ExitStack() as stack:

        def show(path: str, html: bytes):
            # Started only now: while Playwright's sync API runs, its event loop is this
            # thread's, and Django refuses database calls from it.
            p = stack.enter_context(sync_api.sync_playwright())
            browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            stack.callback(browser.close)
            page = browser.new_page(viewport={"width": 375, "height": 800})
            page.route("**/*", answer)
            pages[path] = html
            page.goto(f"{ORIGIN}{path}")
            return page

        yield show


@pytest.mark.parametrize("who", ["sig_se", "ops"])
def test_the_dashboard_fits_a_phone(client, phone, lumi, who):
    sign_in(client, lumi["people"][who])
    phone = phone("/admin/", client.get("/admin/").content)
    assert phone.locator(".cost-share-chart").count() >= 1
    overflow = phone.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    chart = phone.locator(".cost-share-chart").first.bounding_box()
    assert chart["x"] >= 0 and chart["x"] + chart["width"] <= 375
    # Every label of the chart ends inside the drawing.
    outside = phone.evaluate(LABELS_OUTSIDE)
    assert outside == []


def test_a_long_label_at_the_longest_bar_stays_inside_the_chart(phone):
    """The issue's case: the member with the longest bar, and a long status, labelled at
    the bar's end: the drawing is widened to hold the label instead of cutting it."""
    from contributions.chart import cost_share_svg

    report = {
        "accounting_unit": "EUR",
        "members": [
            {
                "member": "FI",
                "delivered": {
                    "compute": "100.00",
                    "data": "0.00",
                    "funds": "0.00",
                    "total": "100.00",
                },
                "obligation": "209.00",
                "ratio": "0.478",
                "status": "critically behind",
            },
            {
                "member": "SE",
                "delivered": {
                    "compute": "0.00",
                    "data": "0.00",
                    "funds": "1234567.00",
                    "total": "1234567.00",
                },
                "obligation": "544567.00",
                "ratio": "2.267",
                "status": "ahead",
            },
        ],
    }
    css = finders.find("consortium/dashboard.css")
    html = (
        f'<!DOCTYPE html><html><head><link rel="stylesheet" href="/static/consortium/dashboard.css">'
        f"</head><body>{cost_share_svg(report)}</body></html>"
    )
    assert css
    page = phone("/chart/", html.encode())
    outside = page.evaluate(LABELS_OUTSIDE)
    assert outside == []
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
