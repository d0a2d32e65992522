"""docs/ledger-format.md's worked example is the format's: recomputed by
scripts/format_example.py from the project's modules, value by value, and section 10's
verifier snippet run on it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "ledger-format.md"


def _check(doc: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "scripts/format_example.py", "--check", "--doc", str(doc)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_document_is_the_format():
    done = _check(DOC)
    assert done.returncode == 0, done.stderr
    assert "the worked example is the format's" in done.stdout


def test_a_value_that_drifts_is_named(tmp_path):
    text = DOC.read_text(encoding="utf-8")
    # The genesis signature written as it was under format v1 (no origin signed).
    v1 = "+VdRI1SLCVI4E64sKqatNhDh3KJS166g83cjjkirBpVw1TxnuMZlpB8rR7BYuDwmdScKyoFw4YVz69fj2anQDA=="
    current = subprocess.run(
        [sys.executable, "scripts/format_example.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    signature = json.loads(current)["genesis signature (base64)"]
    assert signature in text and v1 not in text
    drifted = tmp_path / "drifted.md"
    drifted.write_text(text.replace(signature, v1), encoding="utf-8")
    done = _check(drifted)
    assert done.returncode == 1
    assert "genesis signature (base64) is not in the document" in done.stderr
    assert f"the document writes a value the example does not make: {v1[:80]}" in done.stderr


def test_the_snippet_must_sign_the_origin(tmp_path):
    """Section 10's snippet as format v1 had it (no origin) fails on the example."""
    text = DOC.read_text(encoding="utf-8")
    old = text.replace(
        'message = ENTRY_CONTEXT + origin.encode() + b"\\n" + envelope',
        "message = ENTRY_CONTEXT + envelope",
    )
    assert old != text
    drifted = tmp_path / "snippet.md"
    drifted.write_text(old, encoding="utf-8")
    done = _check(drifted)
    assert done.returncode == 1
    assert "section 10's snippet refuses the example" in done.stderr
