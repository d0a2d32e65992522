"""Numbers read from text take the ASCII digits 0-9 only: Python's int(), Decimal() and
regular expressions' \\d also read other scripts' digits, which would let 100 written in
Arabic-Indic digits (U+0661 U+0660 U+0660) into a signed entry, or count a job's hours from them."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from consortium.access.downloads import Refused, byte_range
from consortium.governance import members as governance
from consortium.governance.changes import GovernanceError
from consortium.governance.terms import check_terms, decimal_string
from contributions import manifest, sacct
from contributions.funds import funds_contribute
from ledger.core.envelope import TIME_RE
from ledger.services import Entry
from tests.steps.api import api_as
from tests.steps.contributions import export
from tests.steps.signin import sign_in

# The same numbers in other scripts' digits: Arabic-Indic, Extended Arabic-Indic
# (Persian), Devanagari, fullwidth, Bengali, mathematical bold.
ARABIC, PERSIAN, DEVANAGARI, FULLWIDTH = (
    "\u0661\u0660",
    "\u06f1\u06f0",
    "\u0967\u0966",
    "\uff11\uff10",
)
BENGALI, BOLD = "\u09e7\u09e6", "\U0001d7cf\U0001d7ce"
TENS = [ARABIC, PERSIAN, DEVANAGARI, FULLWIDTH, BENGALI, BOLD]


@pytest.mark.parametrize("amount", ["\u0661", *TENS, "1\u0660.5", "10.\u0665"])
def test_an_amount_in_other_digits_is_refused_and_nothing_is_written(lumi, amount):
    before = Entry.objects.count()
    with pytest.raises(GovernanceError, match="amount") as exc:
        funds_contribute(
            actor=lumi["people"]["rec_se"], amount=amount, currency="EUR", date_paid="2026-01-01"
        )
    assert exc.value.status == 400
    assert Entry.objects.count() == before


def test_an_amount_in_arabic_indic_digits_is_a_400_through_the_api(lumi):
    before = Entry.objects.count()
    r = api_as(lumi["people"]["rec_se"]).post(
        "/api/v1/contributions/funds",
        {"amount": "\u0661", "currency": "EUR", "date": "2026-01-01"},
        format="json",
    )
    assert r.status_code == 400 and r["Content-Type"] == "application/problem+json"
    assert r.json()["detail"].startswith("amount:")
    assert Entry.objects.count() == before


@pytest.mark.parametrize("ten", TENS)
def test_decimals_in_terms_take_ascii_digits_only(ten):
    with pytest.raises(GovernanceError, match="written as digits"):
        decimal_string(f"0.{ten}", "terms.cost_sharing.shares.FI")
    terms = {
        "parties": ["FI"],
        "effective": {"from": "2026-01-01", "until": None},
        "accounting_unit": "EUR",
        "exchange_rates": {"SEK": f"0.0{ten}"},
        "cost_sharing": {"method": "scale", "shares": {"FI": "1"}},
    }
    with pytest.raises(GovernanceError, match=r"terms\.exchange_rates\.SEK"):
        check_terms("treaty", terms, {"FI"})


@pytest.mark.parametrize("ten", TENS)
def test_a_population_in_other_digits_is_refused(db, ten):
    with pytest.raises(GovernanceError, match="figure population"):
        governance.member_record(code="FI", figures={"population": f"5{ten}"})
    with pytest.raises(CommandError, match="digits 0-9"):
        call_command("consortium", "init", "--name", "C", "--member", f"FI:{ten}")


@pytest.mark.parametrize("ten", TENS)
def test_slurm_numbers_in_other_digits_refuse_the_export(ten):
    reader = sacct.Reader(default_accelerator="h100")
    good = "1|1|c|p|acct|COMPLETED|2026-01-01T00:00:00|2026-01-01T00:00:00|2026-01-01T01:00:00|01:00:00|gres/gpu=4"
    assert reader.read(export(good)).gpu_seconds == 4 * 3600
    bad_rows = {
        "job id": good.replace("1|1|c", f"{ten}|{ten}|c", 1),
        "elapsed": good.replace("|01:00:00|", f"|{ten}:00:00|"),
        "gpus": good.replace("gres/gpu=4", f"gres/gpu={ten}"),
    }
    for what, row in bad_rows.items():
        with pytest.raises(sacct.SacctError, match="line 2"):
            reader.read(export(row))
        assert what
    raw = "JobID|Account|State|Start|End|ElapsedRaw|AllocTRES"
    with pytest.raises(sacct.SacctError, match="ElapsedRaw"):
        reader.read(
            export(
                f"1|acct|COMPLETED|2026-01-01T00:00:00|2026-01-01T01:00:00|36{ten}|gres/gpu=1",
                header=raw,
            )
        )


def test_an_export_with_other_digits_is_a_400_and_nothing_is_written(lumi):
    row = "7|7|lumi|standard-g|project_fi|COMPLETED|2026-01-01T00:00:00|2026-01-01T00:00:00|2026-01-01T01:00:00|01:00:00|gres/gpu=\u0664"
    before = Entry.objects.count()
    r = api_as(lumi["people"]["rec_fi"]).post(
        "/api/v1/facilities/lumi/imports", export(row), content_type="text/plain"
    )
    assert r.status_code == 400 and "line 2" in r.json()["detail"]
    assert Entry.objects.count() == before


@pytest.mark.parametrize("ten", TENS)
def test_ledger_query_parameters_take_ascii_digits_only(lumi, ten):
    api = api_as(lumi["people"]["aud"])
    assert api.get("/api/v1/ledger/entries?limit=10").status_code == 200
    for url in (
        f"/api/v1/ledger/entries?limit={ten}",
        f"/api/v1/ledger/entries?after={ten}",
        f"/api/v1/ledger/proofs/inclusion?index=1&tree_size={ten}",
        f"/api/v1/ledger/proofs/consistency?from=1&to={ten}",
    ):
        r = api.get(url)
        assert r.status_code == 400, url
        assert r["Content-Type"] == "application/problem+json"
        assert "digits 0-9" in str(r.json()), url


def test_an_audit_export_request_takes_ascii_digits_only(lumi):
    api = api_as(lumi["people"]["aud"])
    for body in ({"first": ARABIC}, {"date_from": "\u0662\u0660\u0662\u0666-01-01"}):
        r = api.post("/api/v1/audit/exports", body, format="json")
        assert r.status_code == 400 and "digits 0-9" in str(r.json()), body


def test_a_proposal_deadline_takes_ascii_digits_only(lumi):
    r = api_as(lumi["people"]["ops"]).post(
        "/api/v1/proposals",
        {
            "title": "t",
            "actions": [{"type": "x"}],
            "deadline": "\u0662\u0660\u0662\u0667-01-01T00:00:00Z",
        },
        format="json",
    )
    assert r.status_code == 400 and "digits 0-9" in str(r.json())


def test_a_range_header_takes_ascii_digits_only():
    assert byte_range("bytes=0-9", 100) == (0, 9)
    with pytest.raises(Refused) as exc:
        byte_range("bytes=\u0660-\u0669", 100)
    assert exc.value.status == 416


def test_the_admin_dataset_form_takes_ascii_digits_only(client, lumi):
    sign_in(client, lumi["people"]["rec_fi"])
    form = {
        "name": "Corpus",
        "description": "",
        "manifest_sha256": "ab" * 32,
        "size_bytes": ARABIC,
        "files": 1,
        "tokens": 1000,
        "licence": "CC-BY-4.0",
        "permission": "DUO:0000042",
        "modifiers": ["DUO:0000018"],
        "residency": "FI",
        "access_mode": "federated",
    }
    page = client.post("/admin/contributions/contribution/data/", form)
    assert page.status_code == 200 and "Write it with the digits 0-9." in page.content.decode()
    assert not Entry.objects.filter(kind="data.contributed").exists()


def test_the_admin_funds_form_takes_ascii_digits_only(client, lumi):
    sign_in(client, lumi["people"]["rec_se"])
    page = client.post(
        "/admin/contributions/contribution/funds/",
        {"amount": "10", "currency": "EUR", "date": "\u0662\u0660\u0662\u0666-01-01"},
    )
    assert page.status_code == 200 and "Write it with the digits 0-9." in page.content.decode()
    assert not Entry.objects.filter(kind="funds.contributed").exists()


def test_manifest_sizes_and_envelope_times_take_ascii_digits_only():
    with pytest.raises(manifest.ManifestError, match="line 1"):
        manifest.parse(f"a.txt\t{ARABIC}\t{'ab' * 32}\n".encode())
    assert TIME_RE.fullmatch("2026-01-01T00:00:00Z")
    assert not TIME_RE.fullmatch("\u0662\u0660\u0662\u0666-01-01T00:00:00Z")
