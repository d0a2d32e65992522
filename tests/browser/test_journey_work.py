"""Journeys of long work and of what it yields, as delegates live them in Chromium: an audit
export asked for and followed to its file while it is built in the background, the
checkpoint's access page answering who may download it and why, a download asked for and
fetched, and the cost-share report read on a phone.

Each journey signs in its own person, so they may run in any order against one demo.
"""

from __future__ import annotations

import re
import zipfile

from playwright.sync_api import expect

from tests.steps.browser import Watch, check_page, sign_in

# How a date reads to a person: "5 Dec 2026, 14:03 UTC", never an ISO string with
# microseconds.
PEOPLES_DATE = re.compile(r"\b\d{1,2} [A-Z][a-z]{2} \d{4}, \d{2}:\d{2} UTC")
ISO_WITH_MICROSECONDS = re.compile(r"\d{2}:\d{2}:\d{2}\.\d{3,6}")


def test_a_delegate_asks_for_their_members_audit_export_and_follows_it_to_its_file(
    page, site, watch, tmp_path
):
    sign_in(page, site, "delegate-pt")
    page.goto("/admin/consortium/auditexport/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("audit export")
    check_page(page)

    page.get_by_role("link", name="Ask for an export").click()
    expect(page.get_by_role("heading", name="Ask for an audit export")).to_be_visible()
    # A delegate may export what concerns their own member, and nothing else.
    member = page.get_by_label("Member")
    expect(member.locator("option")).to_have_count(1)
    expect(member.locator("option")).to_have_text(re.compile("Portugal|PT"))
    check_page(page)

    page.get_by_role("button", name="Build the export").click()
    # The page answers at once and follows the work, which runs in the background.
    expect(page.get_by_text("The export is being built; this page follows it.")).to_be_visible()
    expect(page.locator("progress")).to_be_visible()
    check_page(page)

    # Without reloading, the bar reaches its end and the file's link appears.
    link = page.get_by_role("link", name=re.compile(r"^audit-[0-9a-f]{8}\.zip$")).first
    expect(link).to_be_visible(timeout=90_000)
    expect(page.locator(".progress-text").first).to_contain_text("100%")
    expect(page.locator("progress").first).to_have_attribute("value", "100")
    check_page(page)

    with page.expect_download() as download:
        link.click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert re.fullmatch(r"audit-[0-9a-f-]{36}\.zip", saved.name)
    with zipfile.ZipFile(saved) as bundle:
        assert bundle.testzip() is None
        assert bundle.namelist(), "the export holds nothing"

    # The list shows it done, for Portugal, with its file and when it was asked for.
    page.goto("/admin/consortium/auditexport/")
    scope = page.get_by_role("cell", name="PT", exact=True)
    row = page.locator("#result_list tbody tr").filter(has=scope)
    expect(row).to_have_count(1)
    expect(row).to_contain_text("done")
    expect(row.get_by_role("link", name=re.compile(r"^audit-[0-9a-f]{8}\.zip$"))).to_be_visible()
    expect(row).to_contain_text(PEOPLES_DATE)
    expect(page.locator("#result_list")).not_to_contain_text(ISO_WITH_MICROSECONDS)
    check_page(page)


def test_the_secretariat_finds_the_demos_export_and_watches_a_new_one_progress(page, site, watch):
    sign_in(page, site, "admin", site.demo["admin"]["password"])
    page.goto("/admin/consortium/auditexport/")
    # (Another journey may be building one as well: the first one finished.)
    finished = page.get_by_role("link", name=re.compile(r"^audit-[0-9a-f]{8}\.zip$"))
    row = page.locator("#result_list tbody tr").filter(has_text="everything").filter(has=finished)
    row = row.first
    expect(row).to_be_visible()
    expect(row).to_contain_text(PEOPLES_DATE)
    check_page(page)

    # Its page says how to check it offline, with the log's verifier key.
    row.locator("th a, td a").first.click()
    expect(page.get_by_text("verify offline with", exact=False)).to_be_visible()
    expect(page.locator("#content")).to_contain_text(site.demo["verifier_key"])
    expect(page.locator("#content")).to_contain_text(PEOPLES_DATE)
    expect(page.locator("#content")).not_to_contain_text(ISO_WITH_MICROSECONDS)
    check_page(page)

    # A fresh one, followed as it is built.
    page.goto("/admin/consortium/auditexport/ask/")
    expect(page.get_by_label("Member")).to_have_value("")  # everything
    check_page(page)
    page.get_by_role("button", name="Build the export").click()
    expect(page.get_by_text("The export is being built; this page follows it.")).to_be_visible()

    # What the bar shows, read as a person would watch it, until the file's link appears.
    bar = page.locator("progress").first
    link = page.get_by_role("link", name=re.compile(r"^audit-[0-9a-f]{8}\.zip$")).first
    seen = [int(bar.get_attribute("value"))]
    for _ in range(900):
        if link.is_visible():
            break
        page.wait_for_timeout(100)
        seen.append(int(bar.get_attribute("value")))
    expect(link).to_be_visible()
    seen.append(int(bar.get_attribute("value")))
    # The page came back before the work was done, and the bar only ever went forward.
    assert seen[0] < 100, seen
    assert seen == sorted(seen), seen
    assert seen[-1] == 100, seen
    expect(page.locator(".progress-text").first).to_contain_text("100%")
    check_page(page)


def test_sweden_asks_to_download_the_checkpoint_and_fetches_a_file(page, site, watch, tmp_path):
    entitled = site.demo["entitled"]
    sign_in(page, site, site.demo["delegates"][entitled])
    # The dashboard lists the checkpoint among those Sweden may download.
    downloads = page.locator("#downloads")
    expect(downloads).to_contain_text(site.demo["checkpoint"]["name"])
    expect(downloads.locator(".allow").first).to_have_text("may download")
    check_page(page)
    downloads.get_by_role("link", name=re.compile(site.demo["checkpoint"]["name"])).first.click()

    decisions = page.locator("#access-decisions")
    expect(decisions.locator("tr").filter(has_text="full_weights")).to_contain_text(
        f"{entitled} may download it"
    )
    check_page(page)

    page.get_by_label("Scope").select_option("full_weights")
    page.get_by_role("button", name="Ask to download").click()
    issued = page.locator("#download-issued")
    expect(issued).to_contain_text("Download authorised at entry")
    expect(issued.get_by_role("heading")).to_contain_text(PEOPLES_DATE)
    expect(issued).to_contain_text("Why:")
    files = site.demo["checkpoint"]["files"]
    for path in files:
        expect(issued.get_by_role("link", name=path, exact=True)).to_be_visible()
    check_page(page)

    with page.expect_download() as download:
        issued.get_by_role("link", name=files[0], exact=True).click()
    saved = tmp_path / "file"
    download.value.save_as(saved)
    assert download.value.suggested_filename == files[0].rsplit("/", 1)[-1]
    assert saved.stat().st_size > 0


def test_the_netherlands_is_refused_and_told_why(page, site, watch):
    refused = site.demo["refused"]
    sign_in(page, site, site.demo["delegates"][refused["member"]])
    page.goto(f"/admin/consortium/modelcheckpoint/{site.demo['checkpoint']['digest']}/access/")
    row = page.locator("#access-decisions tr").filter(has_text="full_weights")
    expect(row).to_contain_text(f"{refused['member']} may not download it")
    expect(row).to_contain_text(refused["rule"])
    check_page(page)

    # Asking anyway: the page says no, and why; no link is issued.
    page.get_by_label("Scope").select_option("full_weights")
    page.get_by_role("button", name="Ask to download").click()
    expect(page.locator(".messagelist .error")).to_contain_text(refused["rule"])
    expect(page.locator("#download-issued")).to_have_count(0)
    check_page(page)


def test_on_a_phone_a_delegate_reads_the_cost_shares_and_the_exports(browser, site):
    context = browser.new_context(
        base_url=site.url, viewport={"width": 375, "height": 800}, locale="en-GB"
    )
    page = context.new_page()
    seen = Watch()
    seen.attach(page)
    try:
        sign_in(page, site, "delegate-fi")
        expect(page.locator("#balance")).to_be_visible()
        check_page(page, narrow=True)

        page.get_by_role("link", name="Every cost-share report").first.click()
        reports = page.locator("#cost-share-reports")
        expect(reports.get_by_role("link").first).to_be_visible()
        check_page(page, narrow=True)

        reports.get_by_role("link").first.click()
        expect(page.get_by_text("Cost sharing by")).to_be_visible()
        expect(page.locator(".chart-box svg")).to_be_visible()
        table = page.locator(".table-scroll table")
        expect(table.locator("tbody tr")).to_have_count(6)
        expect(table).to_contain_text("FI")
        # Amounts read with thousands separators.
        expect(table).to_contain_text(re.compile(r"\d{1,3},\d{3}"))
        check_page(page, narrow=True)

        page.goto("/admin/consortium/auditexport/")
        expect(page.get_by_role("link", name="Ask for an export")).to_be_visible()
        check_page(page, narrow=True)
        page.get_by_role("link", name="Ask for an export").click()
        expect(page.get_by_role("button", name="Build the export")).to_be_visible()
        check_page(page, narrow=True)

        page.goto(f"/admin/consortium/modelcheckpoint/{site.demo['checkpoint']['digest']}/access/")
        expect(page.locator("#access-decisions")).to_contain_text("FI may")
        check_page(page, narrow=True)
    finally:
        context.close()
    assert not seen.problems(), "\n".join(seen.problems())


def test_a_delegate_reads_a_period_of_the_cost_shares_and_takes_the_csv(
    page, site, watch, tmp_path
):
    sign_in(page, site, "delegate-cz")
    page.get_by_role("link", name="Every cost-share report").first.click()
    page.locator("#cost-share-reports").get_by_role("link").first.click()
    expect(page.get_by_text("Cost sharing by")).to_be_visible()
    check_page(page)

    # A period that ends before anything was delivered: nothing counts, nobody is ahead.
    page.get_by_label("From").fill("2000-01-01")
    page.get_by_label("to", exact=True).fill("2000-12-31")
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"from=2000-01-01&to=2000-12-31"))
    expect(page.get_by_label("From")).to_have_value("2000-01-01")
    table = page.locator(".table-scroll table")
    expect(table.locator("tbody tr")).to_have_count(6)
    delivered = table.locator("tbody tr td:nth-child(7)")
    for i in range(6):
        expect(delivered.nth(i)).to_have_text(re.compile(r"^0(\.0+)?$"))
    check_page(page)

    # The same period as CSV, for a spreadsheet.
    with page.expect_download() as download:
        page.get_by_role("link", name="CSV").click()
    assert re.fullmatch(r"cost-shares-[0-9a-f-]+\.csv", download.value.suggested_filename)
    saved = tmp_path / "cost-shares.csv"
    download.value.save_as(saved)
    lines = saved.read_text().splitlines()
    assert any(line.startswith("CZ") for line in lines), lines[:3]
