"""Audit exports carry the checkpoint served as cosigned, and the offline verifier checks
it against the member's own policy (``--policy``), refusing one below its quorum."""

from __future__ import annotations

import json
import zipfile

from ledger.audit import run, verify
from ledger.audit.checkpoints import NOT_CHECKED
from ledger.checkpoints import publish_checkpoint
from ledger.core.policy import parse_policy
from ledger.models import Checkpoint
from tests.steps.cosigned import log_vkey, policy_text, serve_cosigned, witnesses, write_policy
from tests.steps.ledger import export_bundle


def _anchor(path) -> tuple[int, bytes]:
    with zipfile.ZipFile(path) as z:
        anchor = json.loads(z.read("export.json"))["anchor"]
        return anchor, z.read(f"checkpoints/{anchor}.note")


def test_the_anchor_is_the_cosigned_checkpoint_and_meets_the_policy(history, tmp_path, monkeypatch):
    publish_checkpoint()
    ws = witnesses("NL", "SE", "PL")
    served = serve_cosigned(monkeypatch, ws["NL"], ws["SE"])
    path = export_bundle(tmp_path)
    assert _anchor(path) == (64, served.encode())
    policy = parse_policy(policy_text(ws, "group two-thirds 2 NL SE PL\ntwo-thirds"))
    result = verify(path, log_vkey(), policy=policy)
    assert result.complete, result.failures
    assert (
        "checkpoints/64.note (the anchor): cosigned by NL, SE, your policy's quorum "
        "two-thirds met" in result.checks
    )
    assert result.notes == []
    strict = parse_policy(policy_text(ws, "group all-three all NL SE PL\nall-three"))
    refused = verify(path, log_vkey(), policy=strict)
    assert refused.failures == [
        "checkpoints/64.note (the anchor) is below your policy's quorum: quorum all-three "
        "not met: group all-three: 2 of 3 needed (missing: PL)"
    ]


def test_an_older_cosigned_checkpoint_that_covers_the_range_is_its_anchor(
    history, tmp_path, monkeypatch
):
    publish_checkpoint()  # the latest, at 64, is not cosigned
    older = Checkpoint.objects.exclude(tree_size=64).order_by("-tree_size").first()
    ws = witnesses("NL")
    served = serve_cosigned(monkeypatch, ws["NL"], size=older.tree_size)
    path = export_bundle(tmp_path, end=older.tree_size)
    assert _anchor(path) == (older.tree_size, served.encode())
    result = verify(path, log_vkey(), policy=parse_policy(policy_text(ws, "NL")))
    assert result.complete, result.failures


def test_a_range_beyond_the_cosigned_checkpoint_is_anchored_on_the_log_alone_and_refused(
    history, tmp_path, monkeypatch
):
    older = Checkpoint.objects.order_by("-tree_size").first()
    ws = witnesses("NL")
    serve_cosigned(monkeypatch, ws["NL"], size=older.tree_size)
    path = export_bundle(tmp_path)  # to 64: a checkpoint is published for it
    anchor, note = _anchor(path)
    assert anchor == 64 and note == Checkpoint.objects.get(tree_size=64).note.encode()
    refused = verify(path, log_vkey(), policy=parse_policy(policy_text(ws, "NL")))
    assert refused.failures == [
        "checkpoints/64.note (the anchor) is below your policy's quorum: quorum NL not met: "
        "witness NL did not cosign"
    ]
    # Without a policy, as before, but it says cosignatures were not checked.
    unchecked = verify(path, log_vkey())
    assert unchecked.complete and unchecked.notes == [NOT_CHECKED]
    # A policy of quorum none asks for nothing.
    assert verify(path, log_vkey(), policy=parse_policy(policy_text({}, "none"))).complete


def test_the_command_takes_the_members_policy_file(history, tmp_path, monkeypatch, capsys):
    publish_checkpoint()
    ws = witnesses("NL", "SE")
    serve_cosigned(monkeypatch, ws["SE"])
    path = export_bundle(tmp_path)
    vkey = log_vkey()
    good = write_policy(tmp_path, ws, "group g any NL SE\ng")
    assert run(["verify", str(path), "--vkey", vkey, "--policy", str(good)]) == 0
    out = capsys.readouterr().out
    assert "ok   checkpoints/64.note (the anchor): cosigned by SE, your policy's quorum g met" in (
        out
    )
    assert "NOTE" not in out and out.rstrip().endswith("VERIFIED")
    needs_nl = write_policy(tmp_path, ws, "NL")
    assert run(["verify", str(path), "--vkey", vkey, "--policy", str(needs_nl)]) == 1
    out = capsys.readouterr().out
    assert "FAIL checkpoints/64.note (the anchor) is below your policy's quorum: quorum NL " in out
    assert "witness NL did not cosign" in out and "NOT VERIFIED: 1 failures" in out
    assert run(["verify", str(path), "--vkey", vkey]) == 0
    out = capsys.readouterr().out
    assert f"NOTE {NOT_CHECKED}" in out and out.rstrip().endswith("VERIFIED")
    missing = tmp_path / "absent.policy"
    assert run(["verify", str(path), "--vkey", vkey, "--policy", str(missing)]) == 2
    assert "FAIL the policy: " in capsys.readouterr().out
