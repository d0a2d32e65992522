"""Contributions in the admin: scoped lists, read-only, and the cost-share page."""

from __future__ import annotations

from contributions.models import Contribution
from tests import worlds
from tests.steps.contributions import JOBS, deliver, paid_under_a_treaty, treaty
from tests.steps.signin import sign_in

# Every test here starts from the same world: built once for the module (tests/worlds.py).
lumi = worlds.shared("lumi")


def test_a_delegate_sees_its_own_members_contributions(client, lumi):
    treaty(lumi)  # funds are paid under a treaty in force
    deliver(lumi)
    sign_in(client, lumi["people"]["rec_se"])
    body = client.get("/admin/contributions/contribution/").content.decode()
    se = Contribution.objects.filter(member="SE").first()
    fi = Contribution.objects.filter(member="FI").first()
    assert str(se.id) in body and str(fi.id) not in body
    sign_in(client, lumi["people"]["aud"])
    body = client.get("/admin/contributions/contribution/").content.decode()
    assert str(se.id) in body and str(fi.id) in body


def test_contributions_cannot_be_added_or_changed_in_the_admin(client, lumi):
    treaty(lumi)  # funds are paid under a treaty in force
    deliver(lumi)
    sign_in(client, lumi["people"]["ops"])
    assert client.get("/admin/contributions/contribution/add/").status_code == 403
    c = Contribution.objects.first()
    page = client.get(f"/admin/contributions/contribution/{c.id}/change/").content.decode()
    assert 'name="_save"' not in page


def test_the_cost_share_page_shows_the_table_and_the_chart(client, lumi):
    a = treaty(lumi)
    deliver(lumi)
    sign_in(client, lumi["people"]["obs_nl"])
    agreement_page = client.get(f"/admin/consortium/agreement/{a.id}/change/").content.decode()
    assert f"/admin/consortium/agreement/{a.id}/cost-shares/" in agreement_page
    page = client.get(f"/admin/consortium/agreement/{a.id}/cost-shares/").content.decode()
    assert "<svg" in page and "133.80" in page and "behind" in page
    assert "<script" not in page.split("<svg", 1)[1].split("</svg>", 1)[0]
    # Scaled to the screen by its viewBox, styled by site.css: nothing inline for the CSP.
    assert 'viewBox="0 0 ' in page and 'style="' not in page and "<style" not in page
    march = client.get(
        f"/admin/consortium/agreement/{a.id}/cost-shares/?from=2026-03-01&to=2026-03-31"
    )
    assert "16.80" in march.content.decode()
    assert client.get(f"/admin/consortium/agreement/{a.id}/cost-shares/?from=x").status_code == 404


def test_a_recorder_records_funds_in_the_admin(client, lumi):
    paid_under_a_treaty(lumi)
    sign_in(client, lumi["people"]["rec_se"])
    assert "Record funds" in client.get("/admin/contributions/contribution/").content.decode()
    bad = client.post(
        "/admin/contributions/contribution/funds/",
        {"amount": "1e3", "currency": "SEK", "date": "2026-01-05"},
    )
    assert bad.status_code == 200 and "written as digits" in bad.content.decode()
    ok = client.post(
        "/admin/contributions/contribution/funds/",
        {"amount": "1000", "currency": "SEK", "date": "2026-01-05"},
    )
    assert ok.status_code == 302
    assert Contribution.objects.get().amount == 1000
    sign_in(client, lumi["people"]["obs_nl"])
    assert client.get("/admin/contributions/contribution/funds/").status_code == 403


def test_the_operators_recorder_imports_accounting_in_the_admin(client, lumi):
    from django.core.files.uploadedfile import SimpleUploadedFile

    sign_in(client, lumi["people"]["rec_fi"])
    page = client.post(
        "/admin/contributions/contribution/import/",
        {
            "facility": "lumi",
            "dry_run": "on",
            "export": SimpleUploadedFile("sacct.txt", JOBS, content_type="text/plain"),
        },
    )
    body = page.content.decode()
    assert "Would be recorded (dry run)" in body and "16.000000" in body
    assert not Contribution.objects.exists()
    page = client.post(
        "/admin/contributions/contribution/import/",
        {"facility": "lumi", "export": SimpleUploadedFile("sacct.txt", JOBS)},
    )
    assert "Recorded" in page.content.decode() and Contribution.objects.count() == 2
    sign_in(client, lumi["people"]["rec_se"])  # Sweden runs no facility
    assert client.get("/admin/contributions/contribution/import/").status_code == 403


def test_a_recorder_records_a_dataset_in_the_admin(client, lumi):
    sign_in(client, lumi["people"]["rec_fi"])
    form = {
        "name": "Corpus",
        "description": "",
        "manifest_sha256": "ab" * 32,
        "size_bytes": 10,
        "files": 1,
        "tokens": 1000,
        "licence": "CC-BY-5.0",
        "permission": "DUO:0000042",
        "modifiers": ["DUO:0000018"],
        "residency": "FI",
        "access_mode": "federated",
    }
    bad = client.post("/admin/contributions/contribution/data/", form)
    assert bad.status_code == 200 and "not an SPDX licence id" in bad.content.decode()
    ok = client.post("/admin/contributions/contribution/data/", {**form, "licence": "CC-BY-4.0"})
    assert ok.status_code == 302
    c = Contribution.objects.get()
    assert c.dataset["duo"] == {"permission": "DUO:0000042", "modifiers": ["DUO:0000018"]}
