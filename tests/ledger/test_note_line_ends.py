"""Signed notes end their lines in "\\n" alone (C2SP signed-note v1.0.0): a note with CR
or CRLF line ends is refused by the parser, the server and every offline verifier, which
read notes as bytes (a text read would fold CRLF into newlines and accept it)."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from ledger import audit, checkpoints, proofs, provenance
from ledger.core.note import Checkpoint as Body
from ledger.core.note import (
    NoteError,
    Signer,
    Verifier,
    open_checkpoint,
    open_note,
    sign_note,
)
from ledger.errors import LedgerError
from ledger.models import Checkpoint
from ledger.verify import verify_ledger
from tests.steps.ledger import export_bundle, log_vkey, rewrite_bundle, triggers_disabled

ROOT = Path(__file__).resolve().parents[2]
SPEC = "C2SP signed-note v1.0.0"


def _crlf(note: str | bytes):
    return note.replace("\n", "\r\n") if isinstance(note, str) else note.replace(b"\n", b"\r\n")


@pytest.fixture
def signed():
    signer = Signer("log.example", SigningKey.generate())
    note = sign_note(Body("log.example", 5, bytes(range(32))).body(), signer)
    return note, Verifier(signer.name, signer.key_id, signer.public_key)


# --- the pure parser ---------------------------------------------------------------------------


def test_the_parser_reads_a_note_from_its_bytes(signed):
    note, verifier = signed
    assert open_checkpoint(note.encode(), verifier).size == 5
    assert open_note(note.encode(), [verifier]).text == note.split("\n\n")[0] + "\n"


@pytest.mark.parametrize("as_bytes", [True, False], ids=["bytes", "text"])
def test_the_parser_refuses_crlf_line_ends(signed, as_bytes):
    note, verifier = signed
    bad = _crlf(note.encode() if as_bytes else note)
    with pytest.raises(NoteError, match="line 1 of the note has a CRLF line end") as caught:
        open_checkpoint(bad, verifier)
    assert SPEC in str(caught.value)


def test_the_parser_refuses_cr_line_ends_and_a_single_cr(signed):
    note, verifier = signed
    with pytest.raises(NoteError, match=f"line 1 of the note has a carriage return.*{SPEC}"):
        open_note(note.replace("\n", "\r").encode(), [verifier])
    # Only the signature line's end: the text itself is intact and correctly signed.
    text, sig = note.split("\n\n")
    with pytest.raises(NoteError, match="line 5 of the note has a CRLF line end"):
        open_note((text + "\n\n" + sig[:-1] + "\r\n").encode(), [verifier])
    # The blank line before the signatures.
    with pytest.raises(NoteError, match="line 4 of the note has a CRLF line end"):
        open_note((text + "\n\r\n" + sig).encode(), [verifier])


def test_the_parser_refuses_bytes_that_are_not_utf8(signed):
    note, verifier = signed
    with pytest.raises(NoteError, match="UTF-8"):
        open_note(b"\xff" + note.encode(), [verifier])


# --- the server --------------------------------------------------------------------------------


@pytest.fixture
def crlf_checkpoint_stored(sample_signer):
    from ledger import services

    services.entry_append(signer=sample_signer, kind="test.sample", payload={"n": 1})
    cp = checkpoints.publish_checkpoint()
    with triggers_disabled() as cur:
        cur.execute(
            "UPDATE ledger_checkpoint SET note = %s WHERE tree_size = %s",
            [_crlf(cp.note), cp.tree_size],
        )
    return cp


def test_publication_refuses_to_build_on_a_stored_checkpoint_with_crlf_line_ends(
    crlf_checkpoint_stored, sample_signer
):
    from ledger import services

    services.entry_append(signer=sample_signer, kind="test.sample", payload={"n": 2})
    with pytest.raises(LedgerError, match=f"is not the log's: line 1 .* CRLF line end.*{SPEC}"):
        checkpoints.publish_checkpoint()
    assert Checkpoint.objects.count() == 1


def test_verification_names_a_stored_checkpoint_with_crlf_line_ends(crlf_checkpoint_stored):
    report = verify_ledger(workers=1)
    where = f"checkpoint at size {crlf_checkpoint_stored.tree_size}"
    assert any(p.startswith(where) and "CRLF line end" in p for p in report.problems)


# --- python -m ledger.audit checkpoint / inclusion / consistency ----------------------------------


@pytest.fixture
def note_files(history, tmp_path):
    cp = Checkpoint.objects.order_by("-tree_size").first()
    good = tmp_path / "checkpoint.note"
    good.write_bytes(cp.note.encode())
    bad = tmp_path / "checkpoint-crlf.note"
    bad.write_bytes(_crlf(cp.note.encode()))
    return cp, good, bad


def test_the_checkpoint_command_refuses_a_crlf_file(note_files):
    _, good, bad = note_files
    vkey = log_vkey()
    run = [sys.executable, "-m", "ledger.audit", "checkpoint"]
    ok = subprocess.run(
        [*run, str(good), "--vkey", vkey], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    done = subprocess.run(
        [*run, str(bad), "--vkey", vkey], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert f"FAIL {bad}: line 1 of the note has a CRLF line end" in done.stdout
    assert SPEC in done.stdout and "NOT VERIFIED" in done.stdout


def test_proof_commands_refuse_a_crlf_checkpoint(note_files, tmp_path, capsys):
    import base64

    cp, good, bad = note_files
    old = Checkpoint.objects.order_by("tree_size").first()
    old_bad = tmp_path / "old-crlf.note"
    old_bad.write_bytes(_crlf(old.note.encode()))
    proof = tmp_path / "proof.txt"
    proof.write_text(
        "".join(
            base64.b64encode(h).decode() + "\n"
            for h in proofs.consistency_proof(old.tree_size, cp.tree_size)
        )
    )
    args = [
        "consistency",
        "--proof",
        str(proof),
        "--new-checkpoint",
        str(good),
        "--vkey",
        log_vkey(),
    ]
    assert audit.run([*args, "--old-checkpoint", str(old_bad)]) == 1
    assert f"FAIL {old_bad}: line 1 of the note has a CRLF line end" in capsys.readouterr().out
    inclusion = tmp_path / "inclusion.json"
    inclusion.write_text(
        json.dumps([base64.b64encode(h).decode() for h in proofs.inclusion_proof(3, cp.tree_size)])
    )
    assert (
        audit.run(
            [
                "inclusion",
                "--index",
                "3",
                "--size",
                str(cp.tree_size),
                "--leaf-hash",
                proofs.read_hashes([0])[0].hex(),
                "--proof",
                str(inclusion),
                "--checkpoint",
                str(bad),
                "--vkey",
                log_vkey(),
            ]
        )
        == 1
    )
    assert f"FAIL {bad}: line 1 of the note has a CRLF line end" in capsys.readouterr().out


# --- the audit export verifier -------------------------------------------------------------------


def test_the_export_verifier_refuses_a_checkpoint_with_crlf_line_ends(history, tmp_path):
    path = export_bundle(tmp_path)
    with zipfile.ZipFile(path) as z:
        name = sorted(n for n in z.namelist() if n.startswith("checkpoints/"))[0]

    def crlf(files):
        files[name] = _crlf(files[name])
        return files

    # The operator holds the log key and re-signs the MANIFEST over the changed file.
    rewrite_bundle(path, crlf, resign=True)
    result = audit.verify(path, log_vkey(), workers=0)
    failures = "\n".join(result.failures)
    assert not result.ok
    assert (
        f"{name}: not a checkpoint signed by the log key (line 1 of the note has a CRLF" in failures
    )
    assert SPEC in failures


def test_the_export_verifier_refuses_a_manifest_with_crlf_line_ends(history, tmp_path):
    path = export_bundle(tmp_path)
    out = tmp_path / "unpacked"
    with zipfile.ZipFile(path) as z:
        z.extractall(out)
    manifest = out / "MANIFEST"
    manifest.write_bytes(_crlf(manifest.read_bytes()))
    result = audit.verify(out, log_vkey(), workers=0)
    assert not result.ok
    assert "MANIFEST is not signed by" in result.failures[0]
    assert "line 1 of the note has a CRLF line end" in result.failures[0]


# --- python -m ledger.provenance -----------------------------------------------------------------


def test_the_provenance_verifier_refuses_a_checkpoint_with_crlf_line_ends(
    history,
    tmp_path,
    capsys,
):
    cp = Checkpoint.objects.order_by("-tree_size").first()
    files = tmp_path / "files"
    files.mkdir()
    bundle = tmp_path / "bundle.json"
    bundle.write_bytes(json.dumps({"note": _crlf(cp.note), "entries": {}, "manifest": ""}).encode())
    assert (
        provenance.main(["verify", str(files), "--bundle", str(bundle), "--vkey", log_vkey()]) == 1
    )
    out = capsys.readouterr().out
    assert "FAIL note: not a checkpoint signed by" in out
    assert "line 1 of the note has a CRLF line end" in out and SPEC in out
    # The same bundle with the note as signed gets past the checkpoint (and on to what
    # is missing from it).
    bundle.write_bytes(json.dumps({"note": cp.note, "entries": {}, "manifest": ""}).encode())
    assert (
        provenance.main(["verify", str(files), "--bundle", str(bundle), "--vkey", log_vkey()]) == 1
    )
    out = capsys.readouterr().out
    assert f"ok   checkpoint: signed by {log_vkey().split('+')[0]}, tree size {cp.tree_size}" in out
    assert "CRLF" not in out
