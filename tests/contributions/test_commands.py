"""manage.py contributions: import-sacct (table, JSON, dry run, errors) and manifest."""

from __future__ import annotations

import hashlib
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from contributions.manifest import build, parse
from contributions.models import SacctImport
from ledger.services import Entry
from tests.steps.contributions import JOBS


@pytest.fixture
def export_file(tmp_path):
    path = tmp_path / "sacct.txt"
    path.write_bytes(JOBS)
    return path


def test_a_dry_run_prints_the_table_and_records_nothing(lumi, export_file, capsys):
    before = Entry.objects.count()
    call_command(
        "contributions", "import-sacct", str(export_file), "--facility", "lumi", "--dry-run"
    )
    out = capsys.readouterr().out
    assert "FI       mi250x" in out and "16.000000" in out
    assert "not finished (RUNNING)" in out and "line 5: job 4" in out
    assert "Dry run: nothing was recorded." in out and Entry.objects.count() == before


def test_json_output_names_the_figures(lumi, export_file, capsys):
    call_command(
        "contributions",
        "import-sacct",
        str(export_file),
        "--facility",
        "lumi",
        "--dry-run",
        "--json",
    )
    report = json.loads(capsys.readouterr().out)
    assert report["export_sha256"] == hashlib.sha256(JOBS).hexdigest()
    assert {(c["member"], c["gpu_hours"]) for c in report["contributions"]} == {
        ("FI", "16.000000"),
        ("SE", "2.000000"),
    }
    assert report["recorded"] is None


def test_an_import_as_the_operators_recorder_is_attested(lumi, export_file, capsys):
    call_command(
        "contributions", "import-sacct", str(export_file), "--facility", "lumi", "--as", "rec_fi"
    )
    assert "attested by the facility" in capsys.readouterr().out
    assert SacctImport.objects.get().attested_in is not None
    with pytest.raises(CommandError, match="imported already"):
        call_command(
            "contributions",
            "import-sacct",
            str(export_file),
            "--facility",
            "lumi",
            "--as",
            "rec_fi",
        )


def test_an_export_without_a_header_takes_the_field_list(lumi, tmp_path, capsys):
    lines = JOBS.decode().splitlines()
    header, rows = lines[0], lines[1:]
    path = tmp_path / "noheader.txt"
    path.write_text("\n".join(rows) + "\n")
    call_command(
        "contributions",
        "import-sacct",
        str(path),
        "--facility",
        "lumi",
        "--dry-run",
        "--json",
        "--fields",
        header.replace("|", ","),
    )
    assert len(json.loads(capsys.readouterr().out)["contributions"]) == 2
    with pytest.raises(CommandError, match="no header line"):
        call_command("contributions", "import-sacct", str(path), "--facility", "lumi", "--dry-run")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--facility", "nowhere"], "no facility 'nowhere'"),
        (["--facility", "lumi", "--as", "ghost"], "no user 'ghost'"),
        (["--facility", "lumi", "--tz", "Mars/Olympus"], "not an IANA time zone"),
        (["--facility", "lumi", "--as", "rec_se"], "only the delegates of FI"),
    ],
)
def test_bad_import_arguments_are_command_errors(lumi, export_file, args, message):
    before = Entry.objects.count()
    with pytest.raises(CommandError, match=message):
        call_command("contributions", "import-sacct", str(export_file), *args)
    assert Entry.objects.count() == before


def test_the_manifest_command_prints_the_root_and_writes_the_text(tmp_path, capsys, db):
    data = tmp_path / "corpus"
    (data / "part").mkdir(parents=True)
    (data / "part" / "b.jsonl").write_bytes(b'{"text": "hei"}\n' * 1000)
    (data / "a.txt").write_bytes(b"moi")
    out_file = tmp_path / "manifest.tsv"
    call_command("contributions", "manifest", str(data), "--output", str(out_file), "--json")
    report = json.loads(capsys.readouterr().out)
    manifest = build(data, workers=1)
    assert report == {"manifest_sha256": manifest.root, "files": 2, "size_bytes": 16003}
    assert parse(out_file.read_bytes()) == manifest
    assert out_file.read_bytes().startswith(
        b"a.txt\t3\t" + hashlib.sha256(b"moi").hexdigest().encode()
    )


def test_a_manifest_is_the_same_on_one_core_or_many(tmp_path):
    for i in range(40):
        (tmp_path / f"f{i:02}.bin").write_bytes(bytes([i]) * (i * 1000))
    assert build(tmp_path, workers=1).root == build(tmp_path, workers=2).root


def test_symbolic_links_and_missing_directories_are_refused(tmp_path, db):
    (tmp_path / "real").write_bytes(b"x")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(CommandError, match="symbolic link"):
        call_command("contributions", "manifest", str(tmp_path))
    with pytest.raises(CommandError, match="not a directory"):
        call_command("contributions", "manifest", str(tmp_path / "nope"))
