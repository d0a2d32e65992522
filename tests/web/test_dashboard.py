"""The admin's front page is the member's dashboard: what awaits its member, its balance
against its share, what it may download and why, the latest entries about it; the
secretariat sees the consortium's. Built from the published LUMI world: Sweden (ratio
2.267) downloads the full weights at once; the Netherlands (0.448) waits out an embargo."""

from __future__ import annotations

import re

from django.urls import reverse

from tests import worlds
from tests.steps.signin import sign_in

lumi, checkpoint = (worlds.shared(n, world="published") for n in ("lumi", "checkpoint"))


def dashboard(client, lumi, who):
    sign_in(client, lumi["people"][who])
    response = client.get("/admin/")
    assert response.status_code == 200
    return response.content.decode()


def section(page, html_id):
    """The HTML of the dashboard's section ``html_id``."""
    start = page.index(f'id="{html_id}"')
    return page[start : page.index('<div class="module', start + 1)]


def test_a_signatory_sees_its_balance_against_its_share_and_the_full_report(client, lumi):
    page = dashboard(client, lumi, "sig_se")
    balance = section(page, "balance")
    assert "2.267" in balance
    assert reverse("contributions_cost_shares", args=[lumi_treaty(lumi)]) in balance
    # The chart scales to its box (a phone's width) instead of a fixed size.
    svg = balance[balance.index("<svg") :]
    assert 'viewBox="0 0 ' in svg and re.search(r'class="[^"]*\bcost-share-chart\b', svg)
    assert not re.search(r"<svg[^>]* width=", svg)
    # The table holds Sweden's line alone; the chart (every seat holder reads the
    # report) places it among the others.
    table = balance[: balance.index("<svg")]
    assert "2.267" in table and "0.478" not in table and "0.448" not in table
    assert "0.478" in svg


def lumi_treaty(lumi):
    from consortium.governance.models import Agreement

    return Agreement.objects.get(kind="treaty", state="in_force").pk


def test_a_member_sees_which_checkpoints_it_may_download_and_why(client, lumi, checkpoint):
    ahead = section(dashboard(client, lumi, "sig_se"), "downloads")
    assert str(checkpoint) in ahead
    assert "may download" in ahead and "balance ratio at or above 0.8" in ahead

    behind = section(dashboard(client, lumi, "obs_nl"), "downloads")
    full = behind[behind.index("full_weights") : behind.index("inference_only")]
    assert "may not download" in full and "embargoed until" in full
    inference = behind[behind.index("inference_only") : behind.index("evaluation")]
    assert "may download" in inference and "may not" not in inference


def test_the_latest_entries_about_the_member_link_to_their_pages(client, lumi):
    from ledger.models import Entry

    entries = section(dashboard(client, lumi, "sig_nl"), "recent-entries")
    links = re.findall(r'href="/admin/ledger/entry/(\d+)/change/"', entries)
    assert 1 <= len(links) <= 10
    assert links == sorted(links, key=int, reverse=True)
    # Each concerns the Netherlands: its seats, its treaty signature, its contributions.
    seat_assigned = Entry.objects.filter(kind="seat.assigned").order_by("-index")
    nl_seat = next(e for e in seat_assigned if e.payload.get("member") == "NL")
    se_seat = next(e for e in seat_assigned if e.payload.get("member") == "SE")
    assert str(nl_seat.index) in links and str(se_seat.index) not in links
    # Times for people: "5 Dec 2026, 14:03 UTC".
    assert re.search(r"\d{1,2} [A-Z][a-z]{2} \d{4}, \d{2}:\d{2} UTC", entries)


def test_a_member_sees_nothing_to_sign_and_no_witness_yet(client, lumi):
    page = dashboard(client, lumi, "sig_fi")
    assert "Awaiting FI" in page
    assert "Nothing to sign." in section(page, "pending-work")
    assert "registered no witness" in page
    assert 'id="consortium-dashboard"' not in page
    # The app list stays below the dashboard.
    assert "app-consortium" in page


def test_the_secretariat_sees_every_members_balance(client, lumi):
    page = dashboard(client, lumi, "ops")
    assert 'id="member-dashboard"' not in page
    balances = page[page.index('id="consortium-balances"') :]
    for ratio in ("0.478", "2.267", "0.448"):
        assert ratio in balances
    assert reverse("contributions_cost_share_index") in balances


def test_the_dashboard_reads_the_database_the_same_number_of_times_as_the_log_grows(client, lumi):
    """The page is read per request: its queries must not grow with the log (it is
    benchmarked at 100,000 entries), whoever signed the new entries."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from consortium.governance.changes import member_signer
    from ledger.services import Draft, entries_append, log_signer

    sign_in(client, lumi["people"]["sig_se"])

    def queries():
        with CaptureQueriesContext(connection) as captured:
            page = client.get("/admin/").content.decode()
        return len(captured), page

    before, _ = queries()
    entries_append(
        signer=member_signer("SE"),
        drafts=[Draft("note.sweden", {"n": i}, None, None) for i in range(30)],
    )
    entries_append(
        signer=log_signer(), drafts=[Draft("note.other", {"n": i}, None, None) for i in range(30)]
    )
    after, page = queries()
    assert after == before
    entries = section(page, "recent-entries")
    assert entries.count("note.sweden") == 10 and "note.other" not in entries


def test_the_whole_page_needs_few_queries(client, lumi, django_assert_max_num_queries):
    sign_in(client, lumi["people"]["sig_se"])
    with django_assert_max_num_queries(70):
        assert client.get("/admin/").status_code == 200


def test_the_dashboard_itself_needs_few_queries(lumi, django_assert_max_num_queries):
    from consortium.dashboard import member_dashboard

    with django_assert_max_num_queries(45):
        board = member_dashboard(lumi["people"]["sig_se"])
    assert board["member"].code == "SE"


def test_the_cost_share_reports_are_in_the_navigation(client, lumi):
    page = dashboard(client, lumi, "obs_nl")
    nav = page[page.index('class="nav-extra"') :]
    assert reverse("contributions_cost_share_index") in nav[: nav.index("</nav>")]
    index = client.get(reverse("contributions_cost_share_index")).content.decode()
    assert reverse("contributions_cost_shares", args=[lumi_treaty(lumi)]) in index


def test_no_dashboard_page_carries_an_inline_style(client, lumi):
    for who in ("sig_se", "ops"):
        page = dashboard(client, lumi, who)
        assert " style=" not in page
        assert "<style" not in page
