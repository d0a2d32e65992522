"""Provenance bundles carry the checkpoint served as cosigned; the offline verifier checks
it against the member's own policy (``--policy``) and refuses one below its quorum."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from consortium.access import checkpoints
from ledger.core.policy import parse_policy
from ledger.models import Checkpoint
from ledger.provenance import NOT_CHECKED, verify
from ledger.services import publish_checkpoint
from tests import personas
from tests.steps.cosigned import log_vkey, policy_text, serve_cosigned, witnesses, write_policy

ROOT = Path(__file__).resolve().parents[2]


def test_the_bundle_carries_the_cosigned_checkpoint_and_meets_the_policy(
    checkpoint, tmp_path, monkeypatch
):
    publish_checkpoint()
    ws = witnesses("FI", "SE", "NL")
    served = serve_cosigned(monkeypatch, ws["FI"], ws["NL"])
    bundle = checkpoints.provenance_bundle(checkpoint)
    assert bundle["note"] == served
    files = tmp_path / "w"
    policy = parse_policy(policy_text(ws, "group two 2 FI SE NL\ntwo"))
    result = verify(files, bundle, log_vkey(), policy)
    assert result.ok, result.failures
    assert "checkpoint: cosigned by FI, NL, your policy's quorum two met" in result.checks
    assert result.notes == []
    refused = verify(files, bundle, log_vkey(), parse_policy(policy_text(ws, "SE")))
    assert refused.failures == [
        "note: the checkpoint is below your policy's quorum: quorum SE not met: "
        "witness SE did not cosign"
    ]
    unchecked = verify(files, bundle, log_vkey())
    assert unchecked.ok and unchecked.notes == [NOT_CHECKED]


def test_a_publication_beyond_the_cosigned_checkpoint_gets_the_logs_own(
    lumi, tmp_path, monkeypatch
):
    before = publish_checkpoint()  # cosigned, but before the publication
    published = personas.publish(lumi, tmp_path)
    assert before.tree_size <= published.published_in
    ws = witnesses("FI")
    serve_cosigned(monkeypatch, ws["FI"], size=before.tree_size)
    bundle = checkpoints.provenance_bundle(published)
    latest = Checkpoint.objects.order_by("-tree_size").first()
    assert latest.tree_size > published.published_in and bundle["note"] == latest.note
    refused = verify(tmp_path / "w", bundle, log_vkey(), parse_policy(policy_text(ws, "FI")))
    assert refused.failures == [
        "note: the checkpoint is below your policy's quorum: quorum FI not met: "
        "witness FI did not cosign"
    ]


def test_the_command_takes_the_policy_file_without_django(checkpoint, tmp_path, monkeypatch):
    publish_checkpoint()
    ws = witnesses("FI", "SE")
    serve_cosigned(monkeypatch, ws["SE"])
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(checkpoints.provenance_bundle(checkpoint)))

    def run(*extra: str) -> subprocess.CompletedProcess:
        argv = ["verify", str(tmp_path / "w"), "--bundle", str(path), "--vkey", log_vkey()]
        code = (
            "import sys; sys.modules['django'] = None; from ledger.provenance import main; "
            f"sys.exit(main({[*argv, *extra]!r}))"
        )
        return subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env={"PATH": "/usr/bin:/bin"},
            timeout=60,
            check=False,
        )

    done = run("--policy", str(write_policy(tmp_path, ws, "SE")))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok   checkpoint: cosigned by SE, your policy's quorum SE met" in done.stdout
    done = run("--policy", str(write_policy(tmp_path, ws, "group both all FI SE\nboth")))
    assert done.returncode == 1
    assert "FAIL note: the checkpoint is below your policy's quorum: quorum both not met: " in (
        done.stdout
    )
    assert "group both: 1 of 2 needed (missing: FI)" in done.stdout
    done = run()
    assert done.returncode == 0 and f"NOTE {NOT_CHECKED}" in done.stdout
