"""A delimiter inside a free-text field (a job name such as ``prep|tokenize``) does not
refuse a facility's accounting: with one free-text field the line is read from both
ends; with two, the export is refused naming the line and how to export safely.

``samples/sacct-jobname-with-delimiter.txt`` is written as ``sacct --allusers
--parsable2 --format JobID,JobIDRaw,JobName,Cluster,Partition,Account,State,Submit,Start,
End,ElapsedRaw,AllocTRES`` prints it (steps with the job's TRES, a typed GPU entry beside
the total, sacct not escaping ``|`` in JobName); ``samples/sacct-two-free-text-fields.txt``
adds Comment, so a ``|`` could be in either."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from consortium.governance.changes import GovernanceError
from contributions import sacct
from contributions.compute import sacct_import
from contributions.models import Contribution
from ledger.services import Entry
from tests.steps.api import api_as

SAMPLES = Path(__file__).parent / "samples"
ONE_FREE_TEXT = (SAMPLES / "sacct-jobname-with-delimiter.txt").read_bytes()
TWO_FREE_TEXT = (SAMPLES / "sacct-two-free-text-fields.txt").read_bytes()
PARTITIONS = {"standard-g": "mi250x", "h100-g": "h100"}


def read(data: bytes, **options) -> sacct.Reading:
    return sacct.read_export(data, partitions=PARTITIONS, default_accelerator="mi250x", **options)


def hours(reading) -> dict:
    return {k: a.gpu_hours for k, a in reading.aggregates.items()}


def test_a_job_name_holding_the_delimiter_is_read_from_both_ends():
    reading = read(ONE_FREE_TEXT)
    assert reading.lines == 6 and reading.steps == 3
    assert hours(reading) == {
        ("project_fi", "mi250x"): Decimal("18"),
        ("project_se", "h100"): Decimal("2"),
    }


def test_the_same_export_with_parsable_trailing_delimiters_reads_the_same():
    parsable = b"".join(line + b"|\n" for line in ONE_FREE_TEXT.splitlines())
    assert hours(read(parsable)) == hours(read(ONE_FREE_TEXT))


def test_another_delimiter_is_read_from_the_header():
    text = ONE_FREE_TEXT.decode()
    # As sacct --parsable2 --delimiter=';' prints it: the job names keep their '|', and
    # a ';' in one is read from both ends just the same.
    rows = [line.replace("|", ";") for line in text.splitlines()]
    rows[1] = rows[1].replace("prep;tokenize", "prep|tokenize;v2")
    assert hours(read(("\n".join(rows) + "\n").encode())) == hours(read(ONE_FREE_TEXT))


def test_two_free_text_fields_refuse_the_export_naming_the_line_and_the_way_out():
    with pytest.raises(sacct.SacctError) as exc:
        read(TWO_FREE_TEXT)
    message = str(exc.value)
    assert message.startswith("line 2: expected 13 fields, found 14: '|' stands inside one of")
    assert "JobName and Comment" in message
    assert (
        "sacct --parsable2 --delimiter=" in message and "leave the free-text fields out" in message
    )


def test_too_many_fields_without_a_free_text_field_is_still_refused():
    header = b"JobID|Account|State|Start|End|ElapsedRaw|AllocTRES\n"
    row = b"1|acct|extra|COMPLETED|2026-09-01T00:00:00|2026-09-01T01:00:00|3600|gres/gpu=1\n"
    with pytest.raises(sacct.SacctError, match="line 2: expected 7 fields, found 8"):
        read(header + row)


def test_one_users_job_name_does_not_block_the_facilitys_import(lumi):
    r = api_as(lumi["people"]["rec_fi"]).post(
        "/api/v1/facilities/lumi/imports", ONE_FREE_TEXT, content_type="text/plain"
    )
    assert r.status_code == 201, r.content
    counted = {(c.member_id, c.accelerator): c.gpu_hours for c in Contribution.objects.all()}
    assert counted == {("FI", "mi250x"): Decimal("18"), ("SE", "h100"): Decimal("2")}


def test_an_ambiguous_export_is_a_400_and_nothing_is_written(lumi):
    before = Entry.objects.count()
    r = api_as(lumi["people"]["rec_fi"]).post(
        "/api/v1/facilities/lumi/imports", TWO_FREE_TEXT, content_type="text/plain"
    )
    assert r.status_code == 400 and r["Content-Type"] == "application/problem+json"
    assert "line 2" in r.json()["detail"] and "--delimiter" in r.json()["detail"]
    assert Entry.objects.count() == before
    with pytest.raises(GovernanceError, match="line 2"):
        sacct_import(actor=lumi["people"]["rec_fi"], facility=lumi["facility"], data=TWO_FREE_TEXT)
