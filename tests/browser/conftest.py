"""The browser journeys' fixtures: the demo running (``site``), Debian's Chromium through
pytest-playwright (never a downloaded browser), every page watched for CSP violations and
console errors, and a screenshot of the page when a journey fails.

Without Chromium or axe-core the journeys are skipped, saying what to install; under CI
(``CI=true``, as ``.ci/run`` sets) that is a failure instead.
"""

from __future__ import annotations

import os
import re

import pytest

from tests.steps import browser as steps

pytestmark = pytest.mark.browser


def pytest_collection_modifyitems(config, items):
    """The journeys run last: Playwright's synchronous API keeps an event loop in the main
    thread until the session ends, and Django refuses database calls from a thread with a
    running loop, so no test that uses the database may come after them."""
    journeys = [i for i in items if "tests/browser/" in str(i.fspath).replace(os.sep, "/")]
    others = [i for i in items if i not in journeys]
    items[:] = others + journeys


@pytest.fixture(scope="session")
def site(tmp_path_factory):
    missing = steps.missing_tools()
    if missing:
        reason = "the browser journeys need " + " and ".join(missing)
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(reason)
        pytest.skip(reason)
    with steps.demo_site(tmp_path_factory.mktemp("demo")) as running:
        yield running


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {**browser_type_launch_args, "executable_path": steps.CHROMIUM, "headless": True}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args, site):
    return {
        **browser_context_args,
        "base_url": site.url,
        "locale": "en-GB",
        "timezone_id": "Europe/Paris",
        "viewport": {"width": 1280, "height": 900},
    }


@pytest.fixture
def watch(page):
    """Every page the journey opens, watched; at the end, nothing may have gone wrong."""
    seen = steps.Watch()
    seen.attach(page)
    yield seen
    assert not seen.problems(), "\n".join(seen.problems())


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call" and report.failed and "page" in item.funcargs:
        page = item.funcargs["page"]
        steps.FAILURES.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", item.nodeid)
        path = steps.FAILURES / f"{name}.png"
        try:
            page.screenshot(path=str(path), full_page=True)
            report.sections.append(("screenshot", str(path)))
        except Exception as exc:  # the page may be gone; the failure itself matters more
            report.sections.append(("screenshot", f"none: {exc}"))
    return report
