"""`make demo` as a newcomer meets it: every journey it leaves behind, and every command it
prints, run exactly as printed against a live server.

The demo runs in a scratch directory on its own SQLite database (the embedded default),
as `manage.py demo --json`; a real server (`manage.py runserver`) answers on a free
loopback port; each printed command runs in a shell from that directory.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.steps.ledger import ROOT

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _manage(*args: str, env: dict, cwd: Path, timeout: int = 300) -> str:
    done = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo loaded twice (as a second `make demo` would), and a server in front of it."""
    home = tmp_path_factory.mktemp("newcomer")
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")},
        "DATABASE_URL": f"sqlite:///{home / 'db.sqlite3'}",
        "VAR_DIR": str(home / "var"),
        "MEDIA_ROOT": str(home / "media"),
        "DEBUG": "1",
        "PYTHONPATH": str(ROOT),
    }
    _manage("migrate", "--noinput", "-v0", env=env, cwd=home)
    url = f"http://127.0.0.1:{port}"
    _manage("demo", "--entries", "10", "--url", url, env=env, cwd=home)
    info = json.loads(_manage("demo", "--entries", "5", "--url", url, "--json", env=env, cwd=home))
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=home,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            assert server.poll() is None, server.stdout.read()
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)
    yield {"info": info, "home": home, "env": env}
    server.terminate()
    server.wait(timeout=20)


def _run(command: str, home: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-c", command], cwd=home, capture_output=True, text=True, timeout=180, check=False
    )


def test_every_printed_command_works_as_printed(demo):
    info, home = demo["info"], demo["home"]
    commands = info["commands"]
    assert len(commands) >= 7
    outputs = {}
    for c in commands:
        done = _run(c["command"], home)
        assert done.returncode == 0, (c["what"], c["command"], done.stdout, done.stderr)
        outputs[c["what"]] = done.stdout
    # What each step shows, as the newcomer reads it.
    assert any(
        out.startswith(info["verifier_key"].split("+")[0] + "\n") for out in outputs.values()
    )
    refusal = json.loads(next(out for what, out in outputs.items() if "may NL" in what))
    assert refusal["allow"] is False and "balance ratio under" in refusal["rule"]
    files = sorted(
        p.relative_to(home / "var" / "demo-download").as_posix()
        for p in (home / "var" / "demo-download").rglob("*")
        if p.is_file()
    )
    assert files == sorted(info["checkpoint"]["files"])
    provenance = next(out for what, out in outputs.items() if "downloaded files" in what)
    assert "3 files in var/demo-download: sizes and SHA-256 as published" in provenance
    audit = next(out for what, out in outputs.items() if "audit export" in what)
    assert audit.rstrip().endswith("VERIFIED") and "cost shares and balances" in audit


def test_the_printed_verifier_needs_only_pynacl(demo, tmp_path):
    """The one-file verifier, copied to a machine with Python and PyNaCl: nothing of the
    project or its dependencies on the path."""
    info, home = demo["info"], demo["home"]
    pyz = home / info["verifier"] if not os.path.isabs(info["verifier"]) else Path(info["verifier"])
    export = home / info["audit_export"]["file"]
    # Only the standard library and PyNaCl (with its cffi) are importable.
    import nacl

    site = str(Path(nacl.__file__).parent.parent)
    code = (
        "import sys; sys.path[:] = [p for p in sys.path if 'site-packages' not in p"
        f" and 'dist-packages' not in p] + [{site!r}]; "
        "sys.modules['django'] = sys.modules['celery'] = sys.modules['rfc8785'] = None; "
        f"sys.argv = ['consortium-verify.pyz', 'audit', {str(export)!r}, '--vkey', "
        f"{info['verifier_key']!r}]; sys.path.insert(0, {str(pyz)!r}); "
        "import runpy; runpy.run_path(sys.path[0], run_name='__main__')"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.rstrip().endswith("VERIFIED")


def test_the_demo_leaves_every_journey_to_see(demo):
    info = demo["info"]
    assert info["entitled"] == "SE" and info["refused"]["member"] == "NL"
    assert (
        info["refused"]["figures"]["balance_ratio"]
        < info["refused"]["figures"]["min_balance_ratio"]
    )
    assert info["awaiting_poland"] == [
        "signing Public-sector text corpora (FI, NL, PL)",
        "a vote on Admit Austria",
    ]
    # The second run names an export of everything (not a member's selection) of today.
    export = info["audit_export"]
    assert export and re.fullmatch(r"media/exports/audit-[0-9a-f-]+\.zip", export["file"])
    env = demo["env"]
    state = _manage(
        "shell",
        "-c",
        f"""
from consortium.access.models import DownloadEvent, Evaluation
from consortium.audit.models import AuditExport
from consortium.governance.models import ReleaseApproval
e = AuditExport.objects.get(id="{export["id"]}")
print(e.member_id, e.date_from, e.first, e.end, e.status)
print(DownloadEvent.objects.filter(outcome="served", member="SE").count() >= 1)
print(ReleaseApproval.objects.count(), Evaluation.objects.filter(verdict="pass").count())
""",
        env=env,
        cwd=demo["home"],
    )
    lines = state.strip().splitlines()[-3:]
    assert lines == ["None None None None done", "True", "1 1"]


def test_the_printed_credentials_and_code_log_in_to_the_admin(demo):
    info = demo["info"]
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    login = info["admin"]["url"] + "login/"
    page = opener.open(login, timeout=30).read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)[1]
    for username in (info["admin"]["username"], info["delegates"]["PL"]):
        jar.clear()
        opener.open(login, timeout=30).read()
        token = next(c.value for c in jar if c.name == "csrftoken")
        form = urllib.parse.urlencode(
            {
                "csrfmiddlewaretoken": token,
                "username": username,
                "password": info["admin"]["password"],
                "next": "/admin/",
            }
        ).encode()
        request = urllib.request.Request(login, data=form, headers={"Referer": login})  # noqa: S310
        verify = opener.open(request, timeout=30)
        page = verify.read().decode()
        # The password leads to the second factor; the code comes from the printed command.
        assert "/admin/security/signin/verify/" in verify.geturl(), (username, verify.geturl())
        code = _run(info["second_factor"]["code_command"], demo["home"]).stdout.strip()
        assert re.fullmatch(r"[0-9]{6}", code), code
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)[1]
        form = urllib.parse.urlencode(
            {"csrfmiddlewaretoken": token, "code": code, "next": "/admin/"}
        ).encode()
        request = urllib.request.Request(verify.geturl(), data=form, headers={"Referer": login})  # noqa: S310
        home = opener.open(request, timeout=30)
        body = home.read().decode()
        assert home.geturl().rstrip("/").endswith("/admin"), (username, home.geturl())
        assert "Log out" in body or "logout" in body, username
