"""Treaty audit exports: asked for through the API, built by the task, recorded on the
ledger, and verified offline with the report's figures recomputed from the entries."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile

import pytest

from consortium.audit import exports as audit
from consortium.audit import figures as verifier
from consortium.audit.models import AuditExport
from consortium.governance.changes import GovernanceError
from consortium.governance.documents import document_store
from consortium.governance.votes import vote_cast
from ledger.services import Entry
from tests.steps.api import api_as
from tests.steps.audit import audit_result, forge, make_downloads
from tests.steps.contributions import JOBS, VALUATION, deliver, treaty
from tests.steps.governance import decide_after_deadline
from tests.steps.ledger import ROOT, log_vkey
from tests.steps.signin import sign_in


@pytest.fixture
def downloads(lumi, checkpoint):
    """Sweden is authorised twice; Finland is refused (behind its share)."""
    return make_downloads(lumi, checkpoint)


def _ask(lumi, who, django_capture_on_commit_callbacks, **body):
    with django_capture_on_commit_callbacks(execute=True):
        r = api_as(lumi["people"][who]).post("/api/v1/audit/exports", body, format="json")
    return r


def _bundle(lumi, who, export_id, tmp_path):
    r = api_as(lumi["people"][who]).get(f"/api/v1/audit/exports/{export_id}/file")
    assert r.status_code == 200, r.content
    path = tmp_path / f"{export_id}.zip"
    path.write_bytes(b"".join(r.streaming_content))
    return path


def test_an_auditor_exports_everything_and_verifies_it(
    lumi, downloads, tmp_path, django_capture_on_commit_callbacks
):
    r = _ask(lumi, "aud", django_capture_on_commit_callbacks)
    assert r.status_code == 202, r.content
    assert r["Location"] == f"/api/v1/audit/exports/{r.json()['id']}"
    status = api_as(lumi["people"]["aud"]).get(r["Location"]).json()
    assert status["status"] == "done" and status["progress"] == 100, status
    assert status["file_url"].endswith("/file")
    path = _bundle(lumi, "aud", status["id"], tmp_path)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == status["bundle_sha256"]
    result = audit_result(path)
    assert result.ok, result.failures
    checks = "\n".join(result.checks)
    assert "downloads authorised per member recomputed from the entries (2 in all)" in checks
    assert "report/report.html: exactly the rendering of the 8 CSV tables" in checks
    assert "contributions per member and kind recomputed from the entries" in checks
    # The export itself is on the ledger, after the range it covers.
    recorded = Entry.objects.get(kind="audit.exported")
    assert recorded.payload["export"] == status["id"] and recorded.index == status["recorded_in"]
    assert recorded.payload["end"] <= recorded.index
    assert recorded.payload["bundle_sha256"] == status["bundle_sha256"]
    with zipfile.ZipFile(path) as z:
        assert z.read("report/report.pdf").startswith(b"%PDF-")
        rows = z.read("report/downloads.csv").decode().splitlines()
        assert rows[0] == "member,authorized,served,denied" and "SE,2,0,0" in rows
        assert "FI,0,0,1" in rows
        names = set(z.namelist())
    for table in (
        "members",
        "agreements",
        "signatures",
        "decisions",
        "contributions",
        "cost_shares",
        "access_grants",
        "downloads",
    ):
        assert f"report/{table}.csv" in names
    # The command line says the same.
    assert verifier.main(["verify", str(path), "--vkey", log_vkey(), "--workers", "0"]) == 0


def test_a_delegate_exports_what_concerns_its_member(
    lumi, downloads, tmp_path, django_capture_on_commit_callbacks
):
    r = _ask(lumi, "rec_se", django_capture_on_commit_callbacks, member="FI")
    assert r.status_code == 403 and "exports what concerns SE only" in r.json()["detail"]
    r = _ask(lumi, "rec_se", django_capture_on_commit_callbacks)
    assert r.status_code == 202 and r.json()["member"] == "SE"
    export_id = r.json()["id"]
    # Finland's delegates do not see it; Sweden's and the auditors do.
    assert (
        api_as(lumi["people"]["rec_fi"]).get(f"/api/v1/audit/exports/{export_id}").status_code
        == 404
    )
    assert (
        api_as(lumi["people"]["rec_fi"]).get(f"/api/v1/audit/exports/{export_id}/file").status_code
        == 404
    )
    listed = api_as(lumi["people"]["rec_fi"]).get("/api/v1/audit/exports").json()["results"]
    assert export_id not in {e["id"] for e in listed}
    assert (
        api_as(lumi["people"]["aud"]).get(f"/api/v1/audit/exports/{export_id}").status_code == 200
    )
    path = _bundle(lumi, "sig_se", export_id, tmp_path)
    result = audit_result(path)
    assert result.ok, result.failures
    with zipfile.ZipFile(path) as z:
        meta = json.loads(z.read("export.json"))
        lines = z.read("entries.jsonl").splitlines()
        assert meta["mode"] == "selection" and meta["entries"] == len(lines) > 0
        kinds = {json.loads(line)["entry"]["kind"] for line in lines}
        assert "download.authorized" in kinds
        for line in lines:
            entry = json.loads(line)["entry"]
            if entry["kind"] == "download.authorized":
                assert entry["payload"]["member"] == "SE"
        downloads_csv = z.read("report/downloads.csv").decode()
        assert "FI" not in downloads_csv and "SE,2,0,0" in downloads_csv
    assert any(s.startswith("cost shares: not recomputed") for s in result.skipped)
    assert verifier.main(["verify", str(path), "--vkey", log_vkey(), "--workers", "0"]) == 3


def test_a_figure_changed_in_the_report_is_caught(lumi, downloads, tmp_path):
    """The operator holds the log key: it can re-sign a manifest over a report that lies.
    The figures recomputed from the signed entries still give it away."""
    export = audit.audit_export_request(actor=lumi["people"]["ops"])
    audit.audit_export_build(export.id)
    export.refresh_from_db()
    original = export.file.open("rb").read()

    def tampered(change):
        return forge(original, change, tmp_path / f"t{len(list(tmp_path.iterdir()))}.zip")

    def csv_says_three(files):
        files["report/downloads.csv"] = files["report/downloads.csv"].replace(b"SE,2,", b"SE,3,")
        return files

    failures = "\n".join(audit_result(tampered(csv_says_three)).failures)
    assert "report/downloads.csv: SE authorised 3, the entries say 2" in failures
    # The page still shows 2: it is not the rendering of the forged CSV.
    assert "report/report.html is not the page the CSV files" in failures

    def everything_says_three(files):
        for name in ("report/downloads.csv", "report/report.html"):
            files[name] = (
                files[name]
                .replace(b"SE,2,", b"SE,3,")
                .replace(b"<td>SE</td><td>2</td>", b"<td>SE</td><td>3</td>")
            )
        files["report/figures.json"] = files["report/figures.json"].replace(
            b'"authorized": 2', b'"authorized": 3'
        )
        return files

    failures = "\n".join(audit_result(tampered(everything_says_three)).failures)
    assert "report/downloads.csv: SE authorised 3, the entries say 2" in failures
    assert "report/figures.json: SE authorised 3, the entries say 2" in failures

    def entry_dropped(files):
        lines = files["entries.jsonl"].split(b"\n")
        files["entries.jsonl"] = b"\n".join(
            line
            for line in lines
            if b'"download.authorized"' not in line or b'"member":"SE"' not in line
        )
        return files

    failures = "\n".join(audit_result(tampered(entry_dropped)).failures)
    # The two authorisations were the last entries of the range: the count gives it away.
    assert "entries.jsonl holds" in failures and "authorised 2, the entries say 0" in failures


def test_bad_requests_change_nothing(lumi, downloads, django_capture_on_commit_callbacks):
    before = AuditExport.objects.count()
    api = api_as(lumi["people"]["aud"])
    for body, status, words in (
        ({"first": 5, "end": 3}, 400, "end: after first"),
        ({"first": 10**9}, 400, "first: the log has"),
        ({"date_from": "2026-02-01", "date_to": "2026-01-01"}, 400, "ends before it starts"),
        ({"date_from": "2026-02-01", "first": 2}, 400, "not both"),
        ({"member": "XX"}, 404, "no member XX"),
        ({"first": -1}, 400, ""),
        ({"date_from": "yesterday"}, 400, ""),
    ):
        r = api.post("/api/v1/audit/exports", body, format="json")
        assert r.status_code == status, (body, r.content)
        assert words in r.content.decode()
    assert (
        api_as(lumi["people"]["obs_nl"])
        .post("/api/v1/audit/exports", {}, format="json")
        .status_code
        == 202
    )
    assert AuditExport.objects.count() == before + 1


def test_a_period_selects_the_entries_integrated_in_it(lumi, downloads, tmp_path):
    from datetime import UTC, datetime, timedelta

    today = datetime.now(UTC).date()
    export = audit.audit_export_request(actor=lumi["people"]["aud"], date_from=today, date_to=today)
    audit.audit_export_build(export.id)
    export.refresh_from_db()
    assert export.status == "done" and export.range_first == 0
    # A period after today is refused at once, not found empty by the task.
    with pytest.raises(GovernanceError, match="is after today"):
        audit.audit_export_request(actor=lumi["people"]["aud"], date_from=today + timedelta(days=1))


def test_an_unfinished_export_has_no_file(lumi, downloads):
    export = audit.audit_export_request(actor=lumi["people"]["aud"])
    r = api_as(lumi["people"]["aud"]).get(f"/api/v1/audit/exports/{export.id}/file")
    assert r.status_code == 409 and "queued" in r.json()["detail"]


def test_the_admin_asks_follows_and_serves_exports(
    client, lumi, downloads, django_capture_on_commit_callbacks
):
    sign_in(client, lumi["people"]["rec_se"])
    listing = client.get("/admin/consortium/auditexport/")
    assert listing.status_code == 200 and "Ask for an export" in listing.content.decode()
    page = client.get("/admin/consortium/auditexport/ask/")
    assert '<option value="SE"' in page.content.decode()
    assert '<option value="FI"' not in page.content.decode()  # its own member only
    with django_capture_on_commit_callbacks(execute=True):
        done = client.post("/admin/consortium/auditexport/ask/", {"member": "SE"})
    assert done.status_code == 302
    export = AuditExport.objects.get()
    assert done["Location"].endswith(f"/admin/consortium/auditexport/{export.pk}/change/")
    shown = client.get(done["Location"]).content.decode()
    assert 'value="100"' in shown and "python -m consortium.audit.figures verify" in shown
    assert "--policy &lt;your policy file&gt;" in shown
    got = client.get(f"/admin/consortium/auditexport/{export.pk}/file/")
    assert got.status_code == 200 and b"".join(got.streaming_content).startswith(b"PK")
    # A posted member the delegate may not export is refused, and nothing is queued.
    assert client.post("/admin/consortium/auditexport/ask/", {"member": "FI"}).status_code == 200
    assert AuditExport.objects.count() == 1
    # Finland's delegate sees neither the export nor its file.
    sign_in(client, lumi["people"]["rec_fi"])
    assert str(export.pk) not in client.get("/admin/consortium/auditexport/").content.decode()
    assert client.get(f"/admin/consortium/auditexport/{export.pk}/file/").status_code == 404
    assert client.get(f"/admin/consortium/auditexport/{export.pk}/change/").status_code in (
        302,
        403,
        404,
    )
    # A queued export's page follows its progress (consortium/progress.js polls it).
    queued = audit.audit_export_request(actor=lumi["people"]["aud"])
    sign_in(client, lumi["people"]["aud"])
    page = client.get(f"/admin/consortium/auditexport/{queued.pk}/change/").content.decode()
    assert f'data-progress-url="/admin/consortium/auditexport/{queued.pk}/progress/"' in page
    assert "consortium/progress.js" in page
    following = client.get(f"/admin/consortium/auditexport/{queued.pk}/progress/").json()
    assert following["status"] == "queued" and following["file"] is None


def test_contribution_states_are_recomputed_from_the_entries(lumi, downloads, tmp_path):
    """A dispute upheld voids a contribution, one still open leaves another counting
    (shown as disputed): the verifier follows the same rules as the appliers and reaches
    the report's figures."""
    from contributions.disputes import contribution_dispute, dispute_resolve
    from contributions.models import Contribution, Dispute

    people = lumi["people"]
    funds = Contribution.objects.get(member="SE", kind="funds")
    contribution_dispute(actor=people["sig_fi"], contribution=funds, reason="unpaid")
    dispute_resolve(
        actor=people["ops"],
        dispute=Dispute.objects.get(),
        outcome="upheld",
        resolution="never arrived",
    )
    data = Contribution.objects.get(member="NL", kind="data")
    contribution_dispute(actor=people["sig_se"], contribution=data, reason="licence")
    export = audit.audit_export_request(actor=people["aud"])
    audit.audit_export_build(export.id)
    export.refresh_from_db()
    path = tmp_path / "e.zip"
    path.write_bytes(export.file.open("rb").read())
    with zipfile.ZipFile(path) as z:
        rows = z.read("report/contributions.csv").decode().splitlines()
    assert "SE,funds,1,0,0,1,0,0,0,SEK 1000" in rows
    assert "NL,data,1,1,0,0,1,0,100000000," in rows
    result = audit_result(path)
    assert result.ok, result.failures
    assert any("contributions per member and kind recomputed" in c for c in result.checks)

    # An operator that re-signs a report counting the void funds is caught.
    def count_the_void_funds(files):
        for name in ("report/contributions.csv", "report/report.html"):
            files[name] = (
                files[name]
                .replace(b"SE,funds,1,0,0,1,", b"SE,funds,1,1,0,0,")
                .replace(
                    b"<td>funds</td><td>1</td><td>0</td><td>0</td><td>1</td>",
                    b"<td>funds</td><td>1</td><td>1</td><td>0</td><td>0</td>",
                )
            )
        return files

    path = forge(path.read_bytes(), count_the_void_funds, tmp_path / "forged.zip")
    failures = "\n".join(audit_result(path).failures)
    assert "report/contributions.csv: SE funds reads" in failures
    assert "report/report.html" not in failures  # the page says the same: a consistent lie


def _vote(lumi, actions):
    from datetime import UTC, datetime, timedelta

    from consortium.governance import proposals

    people = lumi["people"]
    p = proposals.proposal_open(
        actor=people["ops"],
        title="Decision",
        actions=actions,
        deadline=datetime.now(UTC) + timedelta(hours=1),
    )
    for who in ("sig_fi", "sig_se", "sig_nl"):
        vote_cast(actor=people[who], proposal=p, choice="yes")
    decide_after_deadline(p)


def _scenario(name, lumi):
    from consortium.governance import agreements
    from contributions.compute import sacct_import

    people = lumi["people"]
    if name == "table adopted by vote":
        treaty(lumi)
        deliver(lumi)
        table = {**VALUATION, "version": 2, "weights": {"mi250x": "0.5", "h100": "1"}}
        _vote(lumi, [{"type": "valuation.adopt", "table": table}])
        sacct_import(
            actor=people["rec_fi"],
            facility=lumi["facility"],
            data=JOBS.replace(b"|1|lumi|", b"|91|lumi|"),
        )
    elif name == "pledges":
        treaty(
            lumi, sharing={"method": "pledged", "pledges": {"FI": "10", "SE": "50", "NL": "100"}}
        )
        deliver(lumi)
    elif name == "capped figures changed by vote":
        treaty(lumi, sharing={"method": "figure", "figure": "population", "cap": "0.45"})
        deliver(lumi)
        _vote(lumi, [{"type": "member.figures", "code": "SE", "figures": {"population": "30"}}])
    elif name == "a party withdraws":
        a = treaty(lumi)
        deliver(lumi)
        agreements.agreement_withdraw(actor=people["sig_nl"], agreement=a, reason="budget")


SCENARIOS = [
    "table adopted by vote",
    "pledges",
    "capped figures changed by vote",
    "a party withdraws",
]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_cost_shares_are_recomputed_from_the_entries(lumi, tmp_path, scenario):
    _scenario(scenario, lumi)
    export = audit.audit_export_request(actor=lumi["people"]["aud"])
    audit.audit_export_build(export.id)
    export.refresh_from_db()
    path = tmp_path / "e.zip"
    path.write_bytes(export.file.open("rb").read())
    with zipfile.ZipFile(path) as z:
        rows = z.read("report/cost_shares.csv").decode().splitlines()
    assert len(rows) > 2, rows
    result = audit_result(path)
    assert result.ok, result.failures
    parties = len(rows) - 1
    assert any(
        f"cost shares and balances of {parties} parties recomputed" in c for c in result.checks
    ), result.checks


def test_a_balance_changed_in_the_report_is_caught(lumi, tmp_path):
    _scenario("pledges", lumi)
    export = audit.audit_export_request(actor=lumi["people"]["aud"])
    audit.audit_export_build(export.id)
    export.refresh_from_db()
    original = export.file.open("rb").read()
    with zipfile.ZipFile(io.BytesIO(original)) as z:
        rows = z.read("report/cost_shares.csv").decode().splitlines()
    fi = next(r for r in rows if ",FI," in r).split(",")
    # Finland owes its pledge of 10.00; the report is made to say it owes nothing.
    forged = [*fi[:3], "0.00", *fi[4:]]

    def owes_nothing(files):
        files["report/cost_shares.csv"] = files["report/cost_shares.csv"].replace(
            ",".join(fi).encode(), ",".join(forged).encode()
        )
        return files

    path = forge(original, owes_nothing, tmp_path / "forged.zip")
    failures = "\n".join(audit_result(path).failures)
    assert f"report/cost_shares.csv: {fi[0]} FI reads" in failures
    assert "'0.00'" in failures and "'10.00'" in failures


def test_a_decision_its_votes_do_not_give_is_without_effect_offline_too(lumi, tmp_path):
    """The secretariat's key signs an acceptance nobody voted for: the applier ignores it,
    and so does the verifier, which recounts the votes."""
    from datetime import UTC, datetime, timedelta

    import time_machine

    from consortium.governance import proposals
    from consortium.governance.changes import secretariat_signer
    from consortium.governance.models import ValuationTable
    from ledger import services as ledger

    people = lumi["people"]
    treaty(lumi)
    deliver(lumi)
    table = {**VALUATION, "version": 2, "weights": {"mi250x": "9", "h100": "9"}}
    p = proposals.proposal_open(
        actor=people["ops"],
        title="Table 2",
        actions=[{"type": "valuation.adopt", "table": table}],
        deadline=datetime.now(UTC) + timedelta(minutes=5),
    )
    forged = {
        "eligible": 3,
        "voted": 3,
        "yes": 3,
        "no": 0,
        "abstain": 0,
        "total_weight": "3",
        "yes_weight": "3",
        "quorum_met": True,
        "rule_met": True,
        "reason": "",
    }
    with time_machine.travel(datetime.now(UTC) + timedelta(minutes=10)):
        ledger.entry_append(
            signer=secretariat_signer(),
            kind="proposal.decided",
            payload={"proposal": str(p.id), "outcome": "accepted", "tally": forged},
        )
    assert not ValuationTable.objects.exists()  # the applier gave it no effect
    _vote(lumi, [{"type": "member.figures", "code": "SE", "figures": {"population": "11"}}])
    export = audit.audit_export_request(actor=people["aud"])
    audit.audit_export_build(export.id)
    export.refresh_from_db()
    path = tmp_path / "e.zip"
    path.write_bytes(export.file.open("rb").read())
    result = audit_result(path)
    assert result.ok, result.failures
    recounted = next(c for c in result.checks if "decisions recounted" in c)
    forged_at = Entry.objects.filter(kind="proposal.decided").order_by("index").first().index
    assert recounted.startswith("1 decisions recounted from the votes")
    assert (
        f"without effect, as their votes do not give them: proposal.decided at index {forged_at}"
        in recounted
    )


def test_the_verifier_needs_neither_django_nor_celery(lumi, downloads, tmp_path):
    import subprocess
    import sys

    export = audit.audit_export_request(actor=lumi["people"]["aud"])
    audit.audit_export_build(export.id)
    export.refresh_from_db()
    path = tmp_path / "e.zip"
    path.write_bytes(export.file.open("rb").read())
    code = (
        "import sys; sys.modules['django'] = None; sys.modules['celery'] = None; "
        "from consortium.audit.figures import main; "
        f"sys.exit(main(['verify', {str(path)!r}, '--vkey', {log_vkey()!r}]))"
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
    assert "cost shares and balances of 3 parties recomputed" in done.stdout
    assert "VERIFIED" in done.stdout


def test_an_attestation_naming_its_import_in_capitals_verifies(lumi, tmp_path):
    """The appliers read ids as UUIDs, whatever their spelling; so does the verifier."""
    from contributions.compute import sacct_import
    from contributions.models import Contribution
    from contributions.selectors import facility_key
    from ledger import services as ledger_services
    from ledger.services import hosted_signer

    _, _, imported = sacct_import(actor=lumi["people"]["ops"], facility=lumi["facility"], data=JOBS)
    assert set(Contribution.objects.values_list("state", flat=True)) == {"reported"}
    key = hosted_signer(facility_key(lumi["facility"]).fingerprint)
    ledger_services.entry_append(
        signer=key,
        kind="compute.attested",
        payload={"import": str(imported.id).upper(), "export_sha256": imported.export_sha256},
    )
    assert set(Contribution.objects.values_list("state", flat=True)) == {"counted"}
    export = audit.audit_export_request(actor=lumi["people"]["aud"])
    audit.audit_export_build(export.id)
    export.refresh_from_db()
    path = tmp_path / "h.zip"
    path.write_bytes(export.file.open("rb").read())
    result = audit_result(path)
    assert result.ok and result.complete, result.failures


def test_one_export_at_a_time_per_person(lumi, downloads):
    from datetime import timedelta

    from django.utils import timezone

    api = api_as(lumi["people"]["aud"])
    first = api.post("/api/v1/audit/exports", {}, format="json")  # queued: no commit hook here
    assert first.status_code == 202
    again = api.post("/api/v1/audit/exports", {}, format="json")
    assert again.status_code == 409 and first.json()["id"] in again.json()["detail"]
    # Somebody else may ask meanwhile.
    assert (
        api_as(lumi["people"]["ops"]).post("/api/v1/audit/exports", {}, format="json").status_code
        == 202
    )
    # An export stuck for hours no longer holds the next one up.
    AuditExport.objects.filter(id=first.json()["id"]).update(
        created_at=timezone.now() - timedelta(hours=7)
    )
    assert api.post("/api/v1/audit/exports", {}, format="json").status_code == 202


# --- the server side under review ------------------------------------------------------------


def test_requests_the_task_would_only_fail_are_refused_at_once(lumi, downloads):
    from datetime import UTC, datetime, timedelta

    today = datetime.now(UTC).date()
    api = api_as(lumi["people"]["aud"])
    for body, words in (
        ({"date_from": (today + timedelta(days=1)).isoformat()}, "is after today"),
        ({"date_to": "9999-12-31"}, "is after today"),
        ({"date_to": "2001-01-01"}, "holds no entry"),
        ({"memebr": "SE"}, "memebr: unknown field"),
    ):
        r = api.post("/api/v1/audit/exports", body, format="json")
        assert r.status_code == 400 and words in r.content.decode(), (body, r.content)
    assert not AuditExport.objects.exists()


def test_a_build_runs_once_and_a_failed_one_leaves_no_file(lumi, downloads, monkeypatch):
    from datetime import timedelta

    from django.core.files.storage import default_storage
    from django.utils import timezone

    people = lumi["people"]
    export = audit.audit_export_request(actor=people["aud"])
    # Another worker holds it and is making progress: this delivery does nothing.
    AuditExport.objects.filter(id=export.id).update(status="running", heartbeat_at=timezone.now())
    assert audit.audit_export_build(export.id).status == "running"
    assert not Entry.objects.filter(kind="audit.exported").exists()
    # That worker is gone (no progress for a while): the next delivery takes it over.
    AuditExport.objects.filter(id=export.id).update(
        heartbeat_at=timezone.now() - timedelta(hours=1)
    )
    assert audit.audit_export_build(export.id).status == "done"
    assert audit.audit_export_build(export.id).status == "done"  # and never builds it again
    assert Entry.objects.filter(kind="audit.exported").count() == 1

    # A build that fails after storing its bundle removes it.
    def refuse(**kwargs):
        raise RuntimeError("the ledger is unavailable")

    monkeypatch.setattr(audit.ledger, "entry_append", refuse)
    failing = audit.audit_export_request(actor=people["ops"])
    with pytest.raises(RuntimeError):
        audit.audit_export_build(failing.id)
    failing.refresh_from_db()
    assert failing.status == "failed" and not failing.file and "unavailable" in failing.error
    assert not default_storage.exists(f"exports/audit-{failing.id}.zip")
    assert api_as(people["ops"]).get(f"/api/v1/audit/exports/{failing.id}/file").status_code == 409


def test_a_members_selection_holds_the_disputes_of_its_records(lumi, downloads, tmp_path):
    from contributions.disputes import contribution_dispute, dispute_resolve
    from contributions.models import Contribution, Dispute

    people = lumi["people"]
    funds = Contribution.objects.get(member="SE", kind="funds")
    contribution_dispute(actor=people["sig_fi"], contribution=funds, reason="unpaid")
    dispute_resolve(
        actor=people["ops"],
        dispute=Dispute.objects.get(),
        outcome="upheld",
        resolution="never arrived",
    )
    export = audit.audit_export_request(actor=people["rec_se"])
    audit.audit_export_build(export.id)
    export.refresh_from_db()
    with zipfile.ZipFile(io.BytesIO(export.file.open("rb").read())) as z:
        kinds = [json.loads(line)["entry"]["kind"] for line in z.read("entries.jsonl").splitlines()]
    assert "contribution.disputed" in kinds and "contribution.resolved" in kinds


def test_the_access_log_counts_follow_the_exported_range(lumi, downloads):
    # Finland was refused after every entry of the first ten was integrated.
    export = audit.audit_export_request(actor=lumi["people"]["aud"], first=0, end=10)
    audit.audit_export_build(export.id)
    export.refresh_from_db()
    with zipfile.ZipFile(io.BytesIO(export.file.open("rb").read())) as z:
        rows = z.read("report/downloads.csv").decode().splitlines()
    assert not any(r.startswith("FI,") for r in rows), rows


def test_text_a_spreadsheet_would_run_is_kept_as_text(lumi, tmp_path):
    from consortium.governance import agreements

    people = lumi["people"]
    doc = document_store(actor=people["ops"], name="x.txt", content=b"x")
    agreements.agreement_propose(
        actor=people["ops"],
        kind="model_licence",
        title='=HYPERLINK("http://x.example","open me")',
        document_sha256=doc.sha256,
        terms={
            "parties": ["FI", "SE"],
            "effective": {"from": "2026-01-01", "until": None},
            "access": [{"scope": "inference_only", "tier": "member"}],
        },
    )
    export = audit.audit_export_request(actor=people["aud"])
    audit.audit_export_build(export.id)
    export.refresh_from_db()
    path = tmp_path / "f.zip"
    path.write_bytes(export.file.open("rb").read())
    with zipfile.ZipFile(path) as z:
        text = z.read("report/agreements.csv").decode()
    assert "'=HYPERLINK(" in text and ",=HYPERLINK(" not in text
    result = audit_result(path)
    assert result.ok and result.complete, result.failures


def test_an_export_across_a_log_key_rotation_verifies_with_the_packaged_verifier(
    lumi, downloads, tmp_path
):
    """The log key is rotated; an auditor who pinned the old key, and one who has the
    new, both verify the export with the one-file verifier (only PyNaCl on the path)."""
    import subprocess
    import sys
    from pathlib import Path

    import nacl

    from ledger.services import log_key_rotate, publish_checkpoint

    old = log_vkey()
    rotation, _ = log_key_rotate()
    publish_checkpoint()
    new = log_vkey()
    assert new != old
    export = audit.audit_export_request(actor=lumi["people"]["aud"])
    audit.audit_export_build(export.id)
    export.refresh_from_db()
    path = tmp_path / "e.zip"
    path.write_bytes(export.file.open("rb").read())
    pyz = tmp_path / "consortium-verify.pyz"
    subprocess.run(
        [sys.executable, "scripts/build_verifier.py", "--output", str(pyz)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=120,
    )
    site = str(Path(nacl.__file__).parent.parent)
    for vkey in (old, new):
        code = (
            "import sys; sys.path[:] = [p for p in sys.path if 'site-packages' not in p"
            f" and 'dist-packages' not in p] + [{site!r}]; "
            "sys.modules['django'] = sys.modules['celery'] = sys.modules['rfc8785'] = None; "
            f"sys.argv = ['consortium-verify.pyz', 'audit', {str(path)!r}, '--vkey', {vkey!r}]; "
            f"sys.path.insert(0, {str(pyz)!r}); "
            "import runpy; runpy.run_path(sys.path[0], run_name='__main__')"
        )
        done = subprocess.run(
            [sys.executable, "-I", "-c", code],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "2 log keys, each rotation signed by both keys" in done.stdout
        assert done.stdout.rstrip().endswith("VERIFIED")
    assert Entry.objects.get(kind="log.key_rotated").index == rotation.index
