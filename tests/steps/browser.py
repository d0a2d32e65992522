"""Steps of the browser journeys (tests/browser): the demo served as ``make demo`` serves
it, Debian's Chromium driven by Playwright, and what every journey checks on every page
it opens: no Content-Security-Policy violation, no console error, and no serious or
critical accessibility violation found by axe-core (from the npm registry, injected
into the page by the test, not by the site).
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.steps.ledger import ROOT
from tests.steps.nginx import free_port, stop_process, wait_for_port

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
# Where a failing journey leaves its screenshot (and CI prints the list).
FAILURES = ROOT / "var" / "browser-failures"
# What axe-core checks: WCAG 2.0/2.1/2.2 A and AA, and its best practices.
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]


def missing_tools() -> list[str]:
    """What the browser journeys need and this machine lacks."""
    missing = []
    if not Path(CHROMIUM).exists() and not shutil.which(CHROMIUM):
        missing.append(f"Debian's chromium at {CHROMIUM} (apt-get install chromium)")
    if not AXE.exists():
        missing.append(f"axe-core at {AXE.relative_to(ROOT)} (npm ci)")
    return missing


@dataclass
class Site:
    """The demo, running: its address and what ``manage.py demo --json`` printed."""

    url: str
    demo: dict
    env: dict
    var_dir: Path

    def manage(self, *args: str, input: str | None = None) -> str:
        """Run ``manage.py`` against the site's database; its standard output."""
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            input=input,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0:
            raise AssertionError(f"manage.py {' '.join(args)} failed:\n{done.stderr}")
        return done.stdout


def demo_env(var_dir: Path) -> dict:
    """The environment ``make demo`` gives the server: DEBUG on, SQLite under ``var_dir``,
    no broker, the witness policy fail-open."""
    # Nothing of the suite's own environment (tests/environment.py: its secrets, its
    # storage, work run inside the request, ...) reaches the demo.
    suite_only = set(
        re.findall(
            r'os\.environ(?:\.setdefault\(|\[)"(\w+)"',
            (ROOT / "tests" / "environment.py").read_text(),
        )
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in suite_only | {"DATABASE_URL", "CELERY_BROKER_URL"}
    }
    env.update(
        DEBUG="1",
        VAR_DIR=str(var_dir),
        MEDIA_ROOT=str(var_dir / "media"),
        TILES_ROOT=str(var_dir / "tlog"),
        LEDGER_WITNESS_FAIL_OPEN="1",
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
    )
    return env


@contextlib.contextmanager
def demo_site(var_dir: Path) -> Iterator[Site]:
    """Migrate, load the demo and serve it with ``runserver`` on a free port, as
    ``make demo`` does; the address is ``localhost`` (a passkey's relying party must be
    a host name, never an IP address)."""
    env = demo_env(var_dir)
    port = free_port()
    url = f"http://localhost:{port}"
    # A passkey ceremony is accepted only from a configured origin; ``make demo``'s own
    # (localhost:8000) is the default, this port is set as an operator would set theirs.
    env["OTP_WEBAUTHN_ALLOWED_ORIGINS"] = url
    site = Site(url=url, demo={}, env=env, var_dir=var_dir)
    site.manage("migrate", "--noinput", "-v0")
    site.demo = json.loads(site.manage("demo", "--entries", "20", "--json", "--url", url))
    log = (var_dir / "runserver.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, server, "runserver")
        yield site
    finally:
        stop_process(server)
        log.close()


@dataclass
class Watch:
    """What went wrong in a page while a journey ran: CSP violations, console errors and
    uncaught exceptions, each with the address of the page it happened on."""

    csp: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def attach(self, page) -> None:
        # The listener is in the page before any of the site's own code runs, on every
        # page the journey opens. Chromium also reports a violation on the console; the
        # event adds the directive and what was blocked.
        page.add_init_script(
            "document.addEventListener('securitypolicyviolation', (e) => {"
            " console.error('CSP violation: ' + e.violatedDirective + ' blocked '"
            " + (e.blockedURI || 'inline') + ' at ' + e.sourceFile + ':' + e.lineNumber); });"
        )
        page.on("console", lambda m: self._console(page, m))
        page.on("pageerror", lambda e: self.errors.append(f"{page.url}: {e}"))
        page.on("response", lambda r: self._response(page, r))

    def _response(self, page, response) -> None:
        # A page the journey asks for may rightly be refused (another member's); what the
        # page itself loads (styles, scripts, images, icons, its JSON) may not fail.
        if response.status >= 400 and response.request.resource_type != "document":
            self.missing.append(f"{page.url}: {response.status} for {response.url}")

    def _console(self, page, message) -> None:
        if message.type != "error" or message.text.startswith("Failed to load resource"):
            return  # a failed load is reported with its address by _response
        text = f"{page.url}: {message.text}"
        if "Content Security Policy" in message.text or "CSP violation" in message.text:
            self.csp.append(text)
        else:
            self.console.append(text)

    def problems(self) -> list[str]:
        return (
            [f"CSP: {c}" for c in self.csp]
            + [f"console: {c}" for c in self.console]
            + [f"page error: {e}" for e in self.errors]
            + [f"failed to load: {m}" for m in self.missing]
        )


# axe-core reads every stylesheet's rules (for its orientation-lock check); a stylesheet
# with an @import (the admin's forms.css imports widgets.css) it rebuilds as <style>
# elements of a document of its own, which the site's Content-Security-Policy rightly
# refuses: the check itself would trip the policy on every change form. While axe runs,
# that document makes constructed stylesheets instead (CSSStyleSheet.replaceSync, which
# is script, not inline style): axe sees the same rules and the page's policy is left as
# it is, still watched.
AXE_CSSOM_WITHOUT_INLINE_STYLE = (
    " const made = document.implementation.createHTMLDocument;"
    " document.implementation.createHTMLDocument = function (title) {"
    "   if (title !== 'Dynamic document for loading cssom') return made.apply(this, arguments);"
    "   return {"
    "     createTextNode: (text) => text,"
    "     createElement: () => ({ text: '', sheet: new CSSStyleSheet(),"
    "       appendChild(text) { this.text += text; } }),"
    "     head: { appendChild: (style) => { style.sheet.replaceSync(style.text); return style; } },"
    "   };"
    " };"
)


def accessibility_violations(page) -> list[str]:
    """axe-core's serious and critical violations on the page as it is now, one line each.

    The script is evaluated through the DevTools protocol, not added to the page as a
    script element, so the site's Content-Security-Policy (which refuses inline scripts)
    is neither bypassed nor tripped by the check itself.
    """
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text())
    result = page.evaluate(
        "async (tags) => {"
        + AXE_CSSOM_WITHOUT_INLINE_STYLE
        + " try { const r = await axe.run(document, {runOnly: {type: 'tag', values: tags}});"
        " return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))})); }"
        " finally { document.implementation.createHTMLDocument = made; } }",
        AXE_TAGS,
    )
    return [
        f"{page.url}: {v['impact']} {v['id']}: {v['help']} ({', '.join(v['nodes'])})"
        for v in result
        if v["impact"] in ("serious", "critical")
    ]


def fits_the_screen(page) -> list[str]:
    """What makes the page wider than the viewport (nothing, at 375 px, on every page)."""
    return page.evaluate(
        "() => { const w = document.documentElement.clientWidth;"
        " if (document.documentElement.scrollWidth <= w) return [];"
        " return [...document.querySelectorAll('body *')].filter(e => {"
        "   const r = e.getBoundingClientRect(); return r.right > w + 1 && r.width > 0; })"
        " .slice(0, 5).map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')"
        " + (e.className && typeof e.className === 'string' ? '.' + e.className.split(' ').join('.') : '')"
        " + ' (' + Math.round(e.getBoundingClientRect().right) + ' px)'); }"
    )


def check_page(page, *, narrow: bool = False) -> None:
    """What every journey asserts of every page it stops on: no serious or critical
    accessibility violation, and (``narrow``) nothing wider than a 375 px screen."""
    violations = accessibility_violations(page)
    assert not violations, "\n".join(violations)
    if narrow:
        overflow = fits_the_screen(page)
        assert not overflow, f"{page.url} is wider than the screen: {', '.join(overflow)}"


def totp_code(secret: str, *, step: int = 0) -> str:
    """The code an authenticator app shows for ``secret`` (RFC 6238, SHA-1, 30 s, six
    digits), ``step`` periods from now: a journey that signs in and then steps up within
    one period types the next period's code, which the server's tolerance of one period
    accepts, since a code once used is refused."""
    key = base64.b32decode(secret)
    counter = int(time.time()) // 30 + step
    digest = hmac.new(key, struct.pack(">Q", counter), "sha1").digest()
    offset = digest[-1] & 15
    value = (struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF) % 10**6
    return f"{value:06d}"


def _last_used_period(site: Site, username: str) -> int:
    """The last period whose code ``username``'s authenticator apps took (-1: none)."""
    out = site.manage(
        "shell",
        "-c",
        "import json; from django_otp.plugins.otp_totp.models import TOTPDevice; "
        "print(json.dumps([d.last_t for d in "
        f"TOTPDevice.objects.filter(user__username={username!r})]))",
    )
    # The last line: the shell may first say what it imported.
    return max(json.loads(out.strip().splitlines()[-1]) or [-1])


def next_code_step(site: Site, username: str) -> int:
    """The ``step`` of :func:`totp_code` that ``username`` may type now: a period after the
    last one they used (journeys share the demo, and a code once used is refused),
    waiting for the next period when the server's tolerance of one is not enough."""
    while True:
        now = int(time.time()) // 30
        step = max(0, _last_used_period(site, username) - now + 1)
        if step <= 1:
            return step
        time.sleep(30 - time.time() % 30 + 0.5)


def sign_in(
    page, site: Site, username: str, password: str | None = None, *, step: int | None = None
) -> None:
    """Sign in to the admin as a person of the demo would: user name and password, then
    the code of the authenticator app the demo gave them (by default, one they have not
    used yet)."""
    page.goto("/admin/login/?next=/admin/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password or site.demo["delegates_password"])
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()
    type_code(page, site, step=step, username=username)


def type_code(page, site: Site, *, step: int | None = None, username: str | None = None) -> None:
    """On a page asking for the second factor (sign-in or step-up): the app's code, of
    ``step`` periods from now, or (``username`` given) the next one they may use."""
    if step is None:
        step = next_code_step(site, username) if username else 0
    page.get_by_label("Code from your authenticator app, or a recovery code").fill(
        totp_code(site.demo["second_factor"]["totp_secret"], step=step)
    )
    page.get_by_role("button", name="Confirm").click()
    page.wait_for_load_state()


def virtual_authenticator(page) -> str:
    """A platform authenticator with user verification, as Chromium's DevTools protocol
    offers it (WebAuthn.addVirtualAuthenticator): the passkey a person's laptop would hold.
    Returns its id."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    added = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    page._virtual_authenticator = (cdp, added["authenticatorId"])
    return added["authenticatorId"]


def passkeys(page) -> list[dict]:
    """The credentials the page's virtual authenticator holds."""
    cdp, authenticator = page._virtual_authenticator
    return cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})["credentials"]


def need_chromium() -> str:
    """Chromium's path, for a test that drives it outside tests/browser; without it the
    test is skipped saying what to install, except under CI, where that is a failure."""
    import pytest

    if Path(CHROMIUM).exists() or shutil.which(CHROMIUM):
        return CHROMIUM
    reason = f"needs Debian's chromium at {CHROMIUM} (apt-get install chromium)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(reason)
    pytest.skip(reason)


def make_person(
    site: Site,
    username: str,
    *,
    role: str = "signatory",
    member: str | None = None,
    superuser: bool = False,
) -> str:
    """A person of the running demo no other journey signs in as: the delegates' password,
    the demo's authenticator app (a device of their own, so the codes they use are theirs
    alone), and a seat given by the secretariat (``role`` for ``member``, or a
    consortium-wide role). Returns the user name."""
    site.manage(
        "shell",
        "-c",
        "from django.contrib.auth import get_user_model\n"
        "from django_otp.plugins.otp_totp.models import TOTPDevice\n"
        "from consortium.governance.seats import seat_assign\n"
        "User = get_user_model()\n"
        f"person = User.objects.create_user({username!r}, password={site.demo['delegates_password']!r},"
        f" is_superuser={superuser!r}, is_staff=True)\n"
        "key = TOTPDevice.objects.get(user__username='admin', name='demo authenticator app').key\n"
        "TOTPDevice.objects.create(user=person, name='demo authenticator app', key=key,"
        " confirmed=True)\n"
        f"seat_assign(actor=User.objects.get(username='admin'), user=person, role={role!r},"
        f" member={member!r})\n",
    )
    return username
