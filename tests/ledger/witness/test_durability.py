"""The witness's compare-and-swap under concurrent requests, its state across SIGKILL,
and its independence from Django and the rest of the project."""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import threading

from ledger.witness.protocol import origin_hash
from tests.steps.witness import (
    PYTHON,
    ROOT,
    TestLog,
    add,
    keygen,
    request,
    start_witness,
    stop,
)


def test_fifty_concurrent_requests_with_the_same_old_give_one_200(tmp_path):
    log = TestLog()
    key, _ = keygen(tmp_path)
    proc, addr = start_witness(tmp_path, key, [f"{log.origin} {log.vkey}"])
    try:
        assert add(addr, log.body(0, 4))[0] == 200
        bodies = [log.body(4, 5 + i) for i in range(50)]  # 50 sizes, each proved from 4
        start = threading.Barrier(50)
        answers = [None] * 50

        def send(i):
            start.wait()
            answers[i] = add(addr, bodies[i])

        threads = [threading.Thread(target=send, args=(i,)) for i in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        stop(proc)
    statuses = sorted(a[0] for a in answers)
    assert statuses == [200] + [409] * 49
    winner = next(i for i, a in enumerate(answers) if a[0] == 200)
    # Every refusal names the size that won: the CAS saw one write, not a race of them.
    assert {a[2] for a in answers if a[0] == 409} == {f"{5 + winner}\n"}


def test_a_witness_killed_right_after_replying_keeps_what_it_replied(tmp_path):
    log = TestLog()
    key, _ = keygen(tmp_path)
    logs = [f"{log.origin} {log.vkey}"]
    proc, addr = start_witness(tmp_path, key, logs)
    assert add(addr, log.body(0, 3))[0] == 200
    status, _, cosig, _ = add(addr, log.body(3, 11))
    os.kill(proc.pid, signal.SIGKILL)  # no shutdown, no chance to flush anything
    stop(proc)
    assert status == 200
    proc, addr = start_witness(tmp_path, key, logs)
    try:
        got, _, text, _ = request(addr, "GET", f"/{origin_hash(log.origin)}/checkpoint")
        assert got == 200 and text.startswith(f"{log.origin}\n11\n")
        assert text.endswith(cosig)
        assert add(addr, log.body(3, 12))[:3] == (409, "text/x.tlog.size", "11\n")
    finally:
        stop(proc)


def test_a_log_dropped_and_added_again_continues_from_its_size(tmp_path):
    log, other = TestLog(), TestLog("example.org/other")
    key, _ = keygen(tmp_path)
    proc, addr = start_witness(tmp_path, key, [f"{log.origin} {log.vkey}"])
    assert add(addr, log.body(0, 6))[0] == 200
    stop(proc)
    proc, addr = start_witness(tmp_path, key, [f"{other.origin} {other.vkey}"])
    assert add(addr, log.body(0, 2))[0] == 404
    stop(proc)
    proc, addr = start_witness(tmp_path, key, [f"{log.origin} {log.vkey}"])
    try:
        assert add(addr, log.body(0, 2))[:3] == (409, "text/x.tlog.size", "6\n")
    finally:
        stop(proc)
    delete = "import sqlite3; sqlite3.connect({!r}).execute('DELETE FROM logs')"
    done = subprocess.run(
        [PYTHON, "-c", delete.format(str(tmp_path / "state.sqlite"))],
        capture_output=True,
        text=True,
    )
    assert "a witnessed log is never removed" in done.stderr


def test_the_witness_package_imports_only_the_standard_library_pynacl_and_pure_ledger_code():
    allowed = ("ledger.core", "ledger.witness", "nacl")
    for path in sorted((ROOT / "ledger" / "witness").glob("*.py")):
        # ML-DSA-44 alone needs the cryptography package, and only where it is used; the
        # mirror checks entries with the offline verifier's own code (pure, PyNaCl only).
        extra = {"mldsa.py": ("cryptography",), "mirror.py": ("ledger.audit",)}.get(path.name, ())
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                top = name.split(".")[0]
                assert top not in ("django", "consortium", "contributions", "rest_framework")
                if top in ("ledger", "nacl", "cryptography"):
                    assert name.startswith(allowed + extra), (path.name, name)


def test_the_command_line_runs_without_django_and_keys_are_private(tmp_path):
    code = (
        "import sys; sys.modules['django'] = None; from ledger.witness.cli import main; "
        "sys.exit(main(sys.argv[1:]))"
    )
    run = [PYTHON, "-c", code]
    key = tmp_path / "w.key"
    env = {"PATH": "/usr/bin:/bin"}
    made = subprocess.run(
        [*run, "keygen", "--name", "w.example", "--out", str(key)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
    )
    assert made.returncode == 0, made.stderr
    assert made.stdout.startswith("w.example+") and made.stdout.count("+") >= 2
    assert key.stat().st_mode & 0o777 == 0o600
    again = subprocess.run(
        [*run, "keygen", "--name", "w.example", "--out", str(key)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
    )
    assert again.returncode == 1 and "never overwritten" in again.stderr
    helped = subprocess.run(
        [PYTHON, "-m", "ledger.witness", "serve", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    for option in ("--key", "--state", "--log", "--listen", "--rate-limit", "--quiet"):
        assert option in helped.stdout
