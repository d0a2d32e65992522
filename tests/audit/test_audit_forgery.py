"""What a dishonest operator (who holds the log key) tries on an audit export: every
forgery re-signs the manifest, and the offline verifier still names what was changed.

Every test here reads the same export of everything, built once for the module
(tests/worlds.py) and forged in a copy of its own."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from consortium.audit import exports as audit
from consortium.audit import figures as verifier
from tests import worlds
from tests.personas import found_lumi, publish
from tests.steps.audit import audit_result, forge, make_downloads
from tests.steps.ledger import log_vkey


@pytest.fixture(scope="module")
def exported_world(django_db_setup, django_db_blocker, tmp_path_factory):
    """LUMI's consortium, its checkpoint, Sweden's downloads and Finland's refusal, and an
    auditor's export of everything (its bytes)."""
    with worlds.kept_for_the_module(django_db_blocker):
        lumi = found_lumi()
        make_downloads(lumi, publish(lumi, tmp_path_factory.mktemp("weights")))
        export = audit.audit_export_request(actor=lumi["people"]["aud"])
        audit.audit_export_build(export.id)
        export.refresh_from_db()
        yield {"whole": export.file.open("rb").read()}


whole = worlds.shared("whole", world="exported")


def _json_edit(name, fn):
    def change(files):
        value = json.loads(files[name])
        fn(value)
        files[name] = json.dumps(value).encode()
        return files

    return change


def test_a_report_state_said_to_be_later_skips_the_figures_and_is_not_exit_0(whole, tmp_path):
    path = forge(
        whole,
        _json_edit("report/figures.json", lambda f: f.update(as_of=f["end"] + 1)),
        tmp_path / "a.zip",
    )
    result = audit_result(path)
    assert result.ok and not result.complete
    assert any(
        "cost shares: not recomputed (the report's state is as of tree size" in s
        for s in result.skipped
    )
    assert verifier.main(["verify", str(path), "--vkey", log_vkey(), "--workers", "0"]) == 3
    moved = forge(
        whole, _json_edit("report/figures.json", lambda f: f.update(first=1)), tmp_path / "b.zip"
    )
    assert "report/figures.json: first, end and member" in "\n".join(audit_result(moved).failures)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda f: {
                **f,
                "report/downloads.csv": f["report/downloads.csv"].replace(
                    b"SE,2,0,0\n", b"SE,99,0,0\nSE,2,0,0\n"
                ),
            },
            "report/downloads.csv line 4: SE appears twice",
        ),
        (
            lambda f: {
                **f,
                "report/contributions.csv": f["report/contributions.csv"]
                + b"TOTAL GPU HOURS 123456\n",
            },
            "cells, the header has 10",
        ),
    ],
)
def test_a_second_row_or_a_short_row_is_refused(whole, tmp_path, change, expected):
    failures = "\n".join(audit_result(forge(whole, change, tmp_path / "r.zip")).failures)
    assert expected in failures


def test_a_member_status_or_a_hidden_table_is_caught(whole, tmp_path):
    def withdrawn(files):
        for name in ("report/members.csv", "report/report.html"):
            files[name] = (
                files[name]
                .replace(b"SE,Sweden,nation,member", b"SE,Sweden,nation,withdrawn")
                .replace(
                    b"<td>SE</td><td>Sweden</td><td>nation</td><td>member</td>",
                    b"<td>SE</td><td>Sweden</td><td>nation</td><td>withdrawn</td>",
                )
            )
        return files

    with zipfile.ZipFile(io.BytesIO(whole)) as z:
        assert b"SE,Sweden,nation,member" in z.read("report/members.csv")
    failures = "\n".join(audit_result(forge(whole, withdrawn, tmp_path / "m.zip")).failures)
    assert "report/members.csv: SE reads" in failures and "'member'" in failures
    assert "report/report.html" not in failures

    def hidden(files):
        page = files["report/report.html"].decode()
        page = page.replace(
            "</body>",
            '<div style="display:none"><table><tr><td>SE</td>'
            "<td>99</td></tr></table></div>\n</body>",
        )
        files["report/report.html"] = page.encode()
        return files

    failures = "\n".join(audit_result(forge(whole, hidden, tmp_path / "h.zip")).failures)
    assert "report/report.html is not the page the CSV files" in failures


@pytest.mark.parametrize(
    "how",
    ["figures_list", "csv_latin1", "html_latin1", "manifest_size", "deep_json", "crc", "twice"],
)
def test_damaged_bundles_fail_with_a_name_never_a_traceback(whole, tmp_path, how):
    def change(files):
        if how == "figures_list":
            files["report/figures.json"] = b"[]"
        elif how == "csv_latin1":
            files["report/contributions.csv"] += b"\xff\n"
        elif how == "html_latin1":
            files["report/report.html"] += b"\xff"
        elif how == "deep_json":
            files["consistency.jsonl"] = b"[" * 100_000 + b"\n"
        return files

    extra = ["0" * 64 + " \u00b2 extra"] if how == "manifest_size" else ()
    path = forge(whole, change, tmp_path / "d.zip", extra)
    if how == "crc":
        with zipfile.ZipFile(path) as z:
            info = z.getinfo("keys.jsonl")
        data = bytearray(path.read_bytes())
        data[info.header_offset + 30 + len(info.filename) + len(info.extra) + 10] ^= 1
        path.write_bytes(bytes(data))
    if how == "twice":
        with zipfile.ZipFile(path, "a") as z, pytest.warns(UserWarning, match="Duplicate name"):
            z.writestr("report/downloads.csv", b"member,authorized,served,denied\nSE,99,0,0\n")
    result = audit_result(path)
    assert not result.ok and result.failures
    if how == "twice":
        assert "holds report/downloads.csv more than once" in result.failures[0]
    assert verifier.main(["verify", str(path), "--vkey", log_vkey(), "--workers", "0"]) == 1
