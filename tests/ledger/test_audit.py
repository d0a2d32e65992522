"""Audit exports: written by ``ledger.export``, checked offline by ``ledger.audit``.

Every kind of tampering an auditor must catch is tried on a real export; each is caught
and named (file, entry index, checkpoint size)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from ledger import audit, export, proofs
from ledger.core.envelope import build_leaf, new_envelope, sign_envelope
from ledger.core.note import sign_note, verifier_key
from ledger.keys import EntrySigner, log_origin, log_signer
from ledger.models import Checkpoint, Entry
from tests.steps.ledger import VECTORS, export_bundle, log_vkey, rewrite_bundle

ROOT = Path(__file__).resolve().parents[2]


def _check(path: Path, vkey: str | None = None) -> audit.Result:
    return audit.verify(path, vkey or log_vkey(), workers=0)


def _lines(files) -> list[bytes]:
    return files["entries.jsonl"].split(b"\n")[:-1]


def _set_lines(files, lines):
    files["entries.jsonl"] = b"".join(line + b"\n" for line in lines)
    return files


def _failures(result) -> str:
    return "\n".join(result.failures)


def test_a_whole_export_verifies(history, tmp_path):
    path = export_bundle(tmp_path)
    result = _check(path)
    assert result.ok, result.failures
    text = "\n".join(result.checks)
    size = proofs.tree_size()
    assert f"{size:,} entries: layout, index and signature" in text
    assert "is a prefix of the anchor" in text or "signed root at" in text
    with zipfile.ZipFile(path) as z:
        meta = json.loads(z.read("export.json"))
        assert (meta["first"], meta["end"], meta["mode"]) == (0, size, "range")
        assert meta["anchor"] == size  # a checkpoint was published for the export
        assert z.read("entries.jsonl").split(b"\n")[5] == bytes(Entry.objects.get(index=5).leaf)
        assert len(z.read("keys.jsonl").splitlines()) == 4  # genesis, two keys, a revocation
    assert audit.run(["verify", str(path), "--vkey", log_vkey(), "--workers", "0"]) == 0


def test_a_range_and_a_selection_verify(history, tmp_path):
    cp = Checkpoint.objects.order_by("tree_size").first().tree_size
    ranged = export_bundle(tmp_path, "ranged.zip", first=10, end=40)
    result = _check(ranged)
    assert result.ok, result.failures
    assert any("signed root at 1 checkpoint sizes" in c for c in result.checks), (cp, result.checks)
    chosen = export_bundle(
        tmp_path, "chosen.zip", first=5, end=50, select=lambda index, leaf: b'"by":"second"' in leaf
    )
    result = _check(chosen)
    assert result.ok, result.failures
    assert any("5 selected entries, each included" in c for c in result.checks)
    # Nothing failed, but not everything could be checked: said, and not exit 0.
    assert any("the selection's completeness" in s for s in result.skipped)
    assert any("the key history before index 10" in s for s in _check(ranged).skipped)
    assert not result.complete
    assert (
        audit.run(["verify", str(ranged), "--vkey", log_vkey(), "--workers", "0"]) == audit.PARTIAL
    )


def test_the_verifier_uses_every_core(history, tmp_path, monkeypatch):
    monkeypatch.setattr("ledger.audit.entries.BATCH", 8)
    path = export_bundle(tmp_path)
    result = audit.verify(path, log_vkey(), workers=2)
    assert result.ok, result.failures


def test_one_byte_of_an_entry_is_caught(history, tmp_path):
    path = export_bundle(tmp_path)

    def flip(files):
        lines = _lines(files)
        lines[20] = lines[20].replace(b'"n":18', b'"n":19')
        return _set_lines(files, lines)

    rewrite_bundle(path, flip)
    failures = _failures(_check(path))
    assert "entries.jsonl: its size or SHA-256 is not the MANIFEST's" in failures
    assert "entry 20: the author's signature does not verify" in failures
    assert "the tree rebuilt from the entries does not have its root" in failures


def test_a_dropped_entry_is_caught(history, tmp_path):
    path = export_bundle(tmp_path)
    rewrite_bundle(path, lambda f: _set_lines(f, _lines(f)[:12] + _lines(f)[13:]), resign=True)
    failures = _failures(_check(path))
    assert "line 13: the entry at index 13 stands where index 12 belongs" in failures
    assert "does not have its root" in failures


def test_a_reordered_pair_is_caught(history, tmp_path):
    path = export_bundle(tmp_path)

    def swap(files):
        lines = _lines(files)
        lines[7], lines[8] = lines[8], lines[7]
        return _set_lines(files, lines)

    rewrite_bundle(path, swap, resign=True)
    failures = _failures(_check(path))
    assert "the entry at index 8 stands where index 7 belongs" in failures
    assert "entry 7: leaf says it is at index 8" in failures


def test_a_checkpoint_signed_by_another_key_is_caught(history, tmp_path):
    path = export_bundle(tmp_path)
    size = Checkpoint.objects.order_by("tree_size").first().tree_size
    forger = EntrySigner.generate(log_signer().name)

    def forge(files):
        text = files[f"checkpoints/{size}.note"].decode().split("\n\n")[0] + "\n"
        files[f"checkpoints/{size}.note"] = sign_note(text, forger.note_signer()).encode()
        return files

    rewrite_bundle(path, forge, resign=True)
    failures = _failures(_check(path))
    assert f"checkpoints/{size}.note: not a checkpoint signed by the log key" in failures


def test_files_outside_or_missing_from_the_manifest_are_named(history, tmp_path):
    path = export_bundle(tmp_path, extra_files=[("report/a.csv", b"a,b\n1,2\n")])

    def without_line(files):
        text = files["MANIFEST"].decode().split("\n\n")[0] + "\n"
        text = "".join(line + "\n" for line in text.split("\n")[:-1] if "report/a.csv" not in line)
        files["MANIFEST"] = sign_note(text, log_signer().note_signer()).encode()
        return files

    rewrite_bundle(path, without_line)
    assert "report/a.csv: in the bundle but not in the MANIFEST" in _failures(_check(path))
    again = export_bundle(tmp_path, "again.zip", extra_files=[("report/a.csv", b"a,b\n1,2\n")])
    rewrite_bundle(again, lambda f: {n: d for n, d in f.items() if n != "report/a.csv"})
    assert "report/a.csv: in the MANIFEST but missing from the bundle" in _failures(_check(again))
    third = export_bundle(tmp_path, "third.zip", extra_files=[("report/a.csv", b"a,b\n1,2\n")])
    rewrite_bundle(third, lambda f: {**f, "report/a.csv": b"a,b\n1,3\n"})
    assert "report/a.csv: its size or SHA-256 is not the MANIFEST's" in _failures(_check(third))


def test_a_manifest_not_signed_by_the_log_is_refused(history, tmp_path):
    path = export_bundle(tmp_path)
    other = EntrySigner.generate(log_signer().name)
    result = _check(path, verifier_key(other.name, other.public_key))
    assert not result.ok and "the verifier key is not a log key of this log" in _failures(result)

    def signed_by_another(files):
        text = files["MANIFEST"].decode().split("\n\n")[0] + "\n"
        files["MANIFEST"] = sign_note(text, other.note_signer()).encode()
        return files

    rewrite_bundle(path, signed_by_another)
    assert "MANIFEST is not signed by" in _failures(_check(path))


def test_an_entry_signed_after_its_key_was_revoked_is_caught(history, tmp_path):
    """A dishonest operator slips in an entry by a revoked key and re-signs everything it
    can: the manifest. The key history and the signed roots still give it away."""
    path = export_bundle(tmp_path)
    second = history["second"]
    revoked_at = Entry.objects.get(kind="key.revoked").index
    target = revoked_at + 3
    original = Entry.objects.get(index=target)
    signed = sign_envelope(
        new_envelope(kind="test.sample", payload={"forged": True}, author=second.fingerprint),
        second.signing_key,
        log_origin(),
    )
    leaf = build_leaf(signed.envelope_bytes, target, original.integrated_time, signed.signature)

    def forge(files):
        lines = _lines(files)
        lines[target] = leaf
        return _set_lines(files, lines)

    rewrite_bundle(path, forge, resign=True)
    failures = _failures(_check(path))
    assert (
        f"(index {target}): author key" in failures and f"revoked at index {revoked_at}" in failures
    )
    assert "does not have its root" in failures or "not a prefix" in failures


def test_a_revocation_hidden_from_the_key_history_is_caught(history, tmp_path):
    path = export_bundle(tmp_path)
    revoked_at = Entry.objects.get(kind="key.revoked").index

    def hide(files):
        files["keys.jsonl"] = b"".join(
            line + b"\n"
            for line in files["keys.jsonl"].splitlines()
            if json.loads(line)["index"] != revoked_at
        )
        return files

    rewrite_bundle(path, hide, resign=True)
    failures = _failures(_check(path))
    assert f"(index {revoked_at}): a key.revoked entry that keys.jsonl does not hold" in failures


def test_single_artefacts(history, tmp_path):
    cp = Checkpoint.objects.order_by("-tree_size").first()
    note = tmp_path / "checkpoint.note"
    note.write_text(cp.note)
    vkey = log_vkey()
    assert audit.run(["checkpoint", str(note), "--vkey", vkey]) == 0
    other = EntrySigner.generate("other")
    assert (
        audit.run(["checkpoint", str(note), "--vkey", verifier_key(other.name, other.public_key)])
        == 1
    )
    # An inclusion proof as the API returns it, and a leaf.
    leaf = tmp_path / "leaf"
    leaf.write_bytes(bytes(Entry.objects.get(index=17).leaf))
    proof = tmp_path / "proof.json"
    proof.write_text(
        json.dumps(
            {
                "index": 17,
                "tree_size": cp.tree_size,
                "proof": [
                    base64.b64encode(h).decode() for h in proofs.inclusion_proof(17, cp.tree_size)
                ],
            }
        )
    )
    args = [
        "inclusion",
        "--index",
        "17",
        "--size",
        str(cp.tree_size),
        "--leaf",
        str(leaf),
        "--proof",
        str(proof),
    ]
    assert audit.run([*args, "--checkpoint", str(note), "--vkey", vkey]) == 0
    assert audit.run([*args, "--root", base64.b64encode(bytes(cp.root_hash)).decode()]) == 0
    leaf.write_bytes(bytes(Entry.objects.get(index=18).leaf))
    assert audit.run([*args, "--checkpoint", str(note), "--vkey", vkey]) == 1
    # A consistency proof between two checkpoints, one hash per line.
    old = Checkpoint.objects.order_by("tree_size").first()
    old_note = tmp_path / "old.note"
    old_note.write_text(old.note)
    lines = tmp_path / "consistency.txt"
    lines.write_text(
        "".join(
            base64.b64encode(h).decode() + "\n"
            for h in proofs.consistency_proof(old.tree_size, cp.tree_size)
        )
    )
    assert (
        audit.run(
            [
                "consistency",
                "--proof",
                str(lines),
                "--old-checkpoint",
                str(old_note),
                "--new-checkpoint",
                str(note),
                "--vkey",
                vkey,
            ]
        )
        == 0
    )
    assert (
        audit.run(
            [
                "consistency",
                "--old",
                str(old.tree_size),
                "--new",
                str(cp.tree_size),
                "--proof",
                str(lines),
                "--old-root",
                bytes(cp.root_hash).hex(),
                "--new-root",
                bytes(cp.root_hash).hex(),
            ]
        )
        == 1
    )


def test_the_verifier_runs_without_django(history, tmp_path):
    path = export_bundle(tmp_path)
    code = (
        "import sys; sys.modules['django'] = None; from ledger.audit import run; "
        f"sys.exit(run(['verify', {str(path)!r}, '--vkey', {log_vkey()!r}]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "VERIFIED" in done.stdout


def test_an_unpacked_export_verifies_too(history, tmp_path):
    path = export_bundle(tmp_path)
    out = tmp_path / "unpacked"
    with zipfile.ZipFile(path) as z:
        z.extractall(out)
    assert _check(out).ok


def test_bad_ranges_are_refused(history, tmp_path):
    size = proofs.tree_size()
    for first, end in ((5, 5), (10, 3), (0, size + 1)):
        with pytest.raises(export.ExportError):
            export.build(tmp_path / "x.zip", export_id="x", first=first, end=end)


def test_a_terminal_gets_a_progress_bar(history, tmp_path, monkeypatch):
    import io

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    screen = Terminal()
    monkeypatch.setattr("sys.stderr", screen)
    path = export_bundle(tmp_path)
    assert audit.run(["verify", str(path), "--vkey", log_vkey(), "--workers", "0"]) == 0
    size = proofs.tree_size()
    assert f"entries {size:>12,}/{size:,} [" in screen.getvalue() and "100%" in screen.getvalue()


# A checkpoint of the Go checksum database (sum.golang.org), as published with a witness's
# cosignature: an artefact from another log, which the single-artefact check must read
# unchanged. Its verifier key is the one the Go toolchain trusts.
SUMDB_NOTE = (
    "go.sum database tree\n10410865\n96zppUbUpnnePBAkSR9khr32mV/siDoiIEvC2oUsX+E=\n\n"
    "\u2014 sum.golang.org Az3grh2ZyI1i5YV8OZEIpvtvYJoO+9rHSlSFpnK+BXU5WBZE2iZwFS0V5SUiNm9AFcAq9cy"
    "yPfikeWvsuozHOC73JgM=\n"
    "\u2014 mhutchinson.witness OEs9vHQyfmpMYeVqf4ADUwTnrtAmFMcAElfgE7jzH61wqz4/fUjYywzzpe0WszAV2e"
    "qUKDoRqlRzPBYjDURkEEbYmwQ=\n"
)
SUMDB_VKEY = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8"


def test_a_checkpoint_of_another_ecosystem_is_checked_as_published(tmp_path, capsys):
    note = tmp_path / "sumdb.note"
    note.write_text(SUMDB_NOTE)
    assert (
        audit.run(
            ["checkpoint", str(note), "--vkey", SUMDB_VKEY, "--origin", "go.sum database tree"]
        )
        == 0
    )
    assert "tree size 10,410,865" in capsys.readouterr().out
    note.write_text(SUMDB_NOTE.replace("10410865", "10410866"))
    assert audit.run(["checkpoint", str(note), "--vkey", SUMDB_VKEY]) == 1
    assert "invalid signature by sum.golang.org" in capsys.readouterr().out


@pytest.mark.parametrize(
    "case", VECTORS["transparency_dev_merkle_inclusion"], ids=lambda c: f"{c['file']}"
)
def test_the_inclusion_command_agrees_with_the_public_vectors(case, tmp_path):
    proof = tmp_path / "proof.json"
    proof.write_text(json.dumps(case["proof"] or []))
    code = audit.run(
        [
            "inclusion",
            "--index",
            str(case["leafIdx"]),
            "--size",
            str(case["treeSize"]),
            "--leaf-hash",
            case["leafHash"],
            "--proof",
            str(proof),
            "--root",
            case["root"],
        ]
    )
    assert code == (1 if case["wantErr"] else 0)


@pytest.mark.parametrize(
    "case", VECTORS["transparency_dev_merkle_consistency"], ids=lambda c: f"{c['file']}"
)
def test_the_consistency_command_agrees_with_the_public_vectors(case, tmp_path, capsys):
    # The proof as one hash per line, as a text file would hold it.
    proof = tmp_path / "proof.txt"
    proof.write_text("".join(h + "\n" for h in case["proof"] or []))
    code = audit.run(
        [
            "consistency",
            "--old",
            str(case["size1"]),
            "--new",
            str(case["size2"]),
            "--old-root",
            case["root1"],
            "--new-root",
            case["root2"],
            "--proof",
            str(proof),
        ]
    )
    if len(base64.b64decode(case["root1"])) != 32:
        # The command reads roots as SHA-256 hashes: a 12-byte "root" is refused as input,
        # even where the vector only asks that two equal values compare equal.
        assert code == 1 and "--old-root: not 32 bytes" in capsys.readouterr().out
        return
    assert code == (1 if case["wantErr"] else 0)


def test_proofs_made_together_are_the_proofs_made_one_by_one(history, monkeypatch):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    monkeypatch.setattr(proofs, "PROOFS_PER_QUERY", 7)
    size = proofs.tree_size()
    indexes = list(range(0, size, 2))
    with CaptureQueriesContext(connection) as queries:
        together = proofs.inclusion_proofs(indexes, size)
    assert together == [proofs.inclusion_proof(i, size) for i in indexes]
    assert len(queries) == -(-len(indexes) // 7)  # one query a batch
    pairs = [(a, b) for a in (1, 5, 16, 31) for b in (31, 40, size) if a <= b]
    assert proofs.consistency_proofs(pairs) == [proofs.consistency_proof(a, b) for a, b in pairs]
