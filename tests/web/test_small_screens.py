"""The admin on a phone (375 px wide, Debian's chromium): no page is wider than the screen,
and the cost-share chart keeps every label inside its drawing.

A delegate of the Netherlands (an observer of the treaty) reads the pages a delegate
uses; the server is the test's live server, the browser a real one.
"""

from __future__ import annotations

import threading
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest

from consortium.audit import exports as audit
from ledger.models import Entry
from tests.personas import found_lumi
from tests.steps.browser import need_chromium
from tests.steps.contributions import deliver, treaty
from tests.steps.signin import sign_in

pytestmark = pytest.mark.slow

WIDTH = 375


@pytest.fixture
def server(committed_db, settings):
    """The site (and its static files) served on a free port by a thread of this process:
    the URL to open. (pytest-django's ``live_server`` flushes the database afterwards,
    which the append-only tables refuse; ``committed_db`` wipes it instead.)"""
    from django.contrib.staticfiles.handlers import StaticFilesHandler
    from django.core.handlers.wsgi import WSGIHandler

    settings.ALLOWED_HOSTS = ["127.0.0.1", "testserver"]
    httpd = make_server("127.0.0.1", 0, StaticFilesHandler(WSGIHandler()), handler_class=_Quiet)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    thread.join()


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def browser_page(server, client):
    """A 375 px wide chromium page signed in as the observer of the Netherlands."""
    from playwright.sync_api import sync_playwright

    chromium = need_chromium()
    lumi = found_lumi()
    agreement = treaty(lumi)
    deliver(lumi)
    audit.audit_export_request(actor=lumi["people"]["aud"], member="NL")
    sign_in(client, lumi["people"]["obs_nl"])
    last = Entry.objects.order_by("-index").values_list("index", flat=True).first()
    # (No database from here on: the browser's driver runs an event loop in this thread.)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium)
        context = browser.new_context(viewport={"width": WIDTH, "height": 800})
        context.add_cookies(
            [
                {
                    "name": "sessionid",
                    "value": client.cookies["sessionid"].value,
                    "url": server,
                }
            ]
        )
        yield context.new_page(), server, agreement.pk, last
        browser.close()


def _width(page, url):
    response = page.goto(url)
    assert response.status == 200, (url, response.status)
    return page.evaluate("document.documentElement.scrollWidth")


def test_the_pages_of_a_delegate_fit_a_phone(browser_page):
    page, base, agreement, last = browser_page
    for path in [
        "/admin/",
        "/admin/consortium/agreement/",
        f"/admin/consortium/agreement/{agreement}/change/",
        f"/admin/consortium/agreement/{agreement}/cost-shares/",
        "/admin/consortium/proposal/",
        "/admin/contributions/contribution/",
        "/admin/ledger/entry/",
        f"/admin/ledger/entry/{last}/change/",
        "/admin/ledger/checkpoint/",
    ]:
        assert _width(page, base + path) <= WIDTH, path


def test_the_cost_share_chart_keeps_its_labels_inside(browser_page):
    page, base, agreement, _ = browser_page
    _width(page, f"{base}/admin/consortium/agreement/{agreement}/cost-shares/")
    chart = page.locator("svg.chart")
    box = chart.bounding_box()
    assert 0 < box["width"] <= WIDTH
    for label in chart.locator("text").all():
        # In the SVG's own units: every label ends inside the viewBox.
        end = label.evaluate("t => t.getBBox().x + t.getBBox().width")
        assert end <= chart.evaluate("s => s.viewBox.baseVal.width"), label.text_content()
    # The table scrolls in its own box; nothing is styled inline (the CSP forbids it).
    assert page.locator(".table-scroll table").count() == 1
    assert page.locator("[style]").count() == 0
