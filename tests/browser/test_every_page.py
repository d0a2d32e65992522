"""Every page of the admin a person reaches by following links, at a desk and on a phone,
as a member's signatory and as the secretariat: each opens (no error status), without a
Content-Security-Policy violation, a console error or a failed load, without a serious or
critical accessibility violation, and (on the phone) nothing wider than the screen.

The crawl starts from the dashboard and a few pages reached by buttons and forms (the
security page, the step-up page, the API tokens, the cost shares, the confirmations of
signing, withdrawing and voting, opened with GET, which changes nothing) and follows every
link under /admin/ once per kind of page: one list page per model, its first object, one
confirmation of each kind. Links that act (log out, delete) or that download a file are
not followed.
"""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

import pytest

from tests.steps.browser import Watch, check_page, make_person, sign_in

SEEDS = [
    "/admin/",
    "/admin/security/",
    "/admin/security/step-up/?next=/admin/",
    "/admin/consortium/apitoken/",
    "/admin/consortium/apitoken/new/",
    "/admin/consortium/cost-shares/",
]
# Links not followed: they act, download a file, or belong to signing in (the journeys
# of signing in open those).
SKIP = re.compile(
    r"/logout/|/delete/|/history/|/document/|/file/?$|\.(zip|csv|json|pyz)$|^/admin/r/"
    r"|^/admin/security/(signin|webauthn|codes/$)|/jsi18n/"
)
# Each kind of page once: identifiers (UUIDs, digests, numbers) stand for any.
IDENTIFIER = re.compile(r"[0-9a-f]{8}-[0-9a-f-]{27}|[0-9a-f]{16,}|(?<=/)\d+(?=/)")
MOST_PAGES = 150


def _kind(path: str) -> str:
    return IDENTIFIER.sub("*", path)


def _links(page) -> list[str]:
    """The page's links under /admin/: of a list, only its first object."""
    hrefs = page.eval_on_selector_all(
        "a[href]:not(#result_list a), #result_list tbody tr:first-child th a",
        "links => links.map(a => a.getAttribute('href'))",
    )
    found = []
    for href in hrefs:
        parts = urlsplit(urljoin(page.url, href))
        if parts.path.startswith("/admin/") and not SKIP.search(parts.path):
            found.append(parts.path)
    return found


def _crawl(page, *, narrow: bool) -> tuple[list[str], list[str]]:
    """Every kind of page reached from the seeds; what was visited and what failed."""
    queue = list(SEEDS)
    kinds: set[str] = set()
    visited: list[str] = []
    failures: list[str] = []
    while queue and len(visited) < MOST_PAGES:
        url = queue.pop(0)
        kind = _kind(url)
        if kind in kinds:
            continue
        kinds.add(kind)
        response = page.goto(url)
        visited.append(url)
        if response is None or response.status >= 400:
            failures.append(f"{url}: {response.status if response else 'no response'}")
            continue
        try:
            check_page(page, narrow=narrow)
        except AssertionError as problem:
            failures.append(str(problem))
        queue.extend(u for u in _links(page) if _kind(u) not in kinds)
    return visited, failures


@pytest.mark.parametrize("width", [1280, 375])
@pytest.mark.parametrize("who", ["signatory", "secretariat"])
def test_every_page_opens_cleanly(browser, site, who, width):
    if who == "signatory":
        # Poland's: the confirmations of signing and voting are there to open while
        # Poland's signature and vote are awaited.
        person = make_person(site, f"crawler-pl-{width}", member="PL")
    else:
        person = make_person(
            site, f"crawler-secretariat-{width}", role="secretariat", superuser=True
        )
    context = browser.new_context(
        base_url=site.url, viewport={"width": width, "height": 900}, locale="en-GB"
    )
    page = context.new_page()
    seen = Watch()
    seen.attach(page)
    try:
        sign_in(page, site, person)
        visited, failures = _crawl(page, narrow=width == 375)
    finally:
        context.close()
    failures += seen.problems()
    assert not failures, "\n".join(failures)
    # The crawl reached the kinds of pages it is there for.
    reached = "\n".join(visited)
    for kind in (
        r"^/admin/consortium/agreement/$",
        r"^/admin/consortium/agreement/[0-9a-f-]+/change/$",
        r"^/admin/consortium/proposal/[0-9a-f-]+/change/$",
        r"^/admin/consortium/apitoken/new/$",
        r"^/admin/consortium/cost-shares/$",
        r"^/admin/security/$",
        r"^/admin/ledger/",
    ):
        assert re.search(kind, reached, re.MULTILINE), f"never reached {kind}:\n{reached}"
    if who == "signatory":
        assert re.search(r"/agreement/[0-9a-f-]+/(sign|withdraw)/$", reached, re.MULTILINE)
