"""Dates and numbers as people read them in the admin ("5 Dec 2026, 14:03 UTC",
"1,234,567.89"), while the API keeps RFC 3339 and plain digits.

The secretariat (ops) opens a proposal; a signatory of France reads it in the admin and a
partner system reads it through the API.
"""

from __future__ import annotations

import re

from django.utils import timezone

from consortium.governance.models import Proposal
from ledger.models import Entry
from tests.steps.api import api_as
from tests.steps.governance import open_proposal
from tests.steps.signin import sign_in

# "5 Dec 2026, 14:03 UTC"
PEOPLE_TIME = re.compile(r"\b\d{1,2} [A-Z][a-z]{2} \d{4}, \d{2}:\d{2} UTC\b")
MICROSECONDS = re.compile(r"\d{2}:\d{2}:\d{2}\.\d+")
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


def _shown(deadline: str) -> str:
    moment = timezone.datetime.fromisoformat(deadline.replace("Z", "+00:00"))
    return f"{moment.day} {moment:%b %Y, %H:%M} UTC"


def test_a_delegate_reads_times_without_microseconds(client, delegates):
    proposal = open_proposal(delegates)
    sign_in(client, delegates["fr"])
    for url in [
        "/admin/consortium/proposal/",
        f"/admin/consortium/proposal/{proposal.pk}/change/",
        "/admin/ledger/entry/",
        f"/admin/ledger/entry/{Entry.objects.order_by('-index').first().index}/change/",
    ]:
        page = client.get(url)
        assert page.status_code == 200, url
        # The page's text, without the entry's payload as recorded (shown as JSON).
        text = re.sub(r"<pre>.*?</pre>", "", page.content.decode(), flags=re.S)
        assert PEOPLE_TIME.search(text), url
        assert not MICROSECONDS.search(text), (url, MICROSECONDS.search(text)[0])
        assert not RFC3339.search(text), (url, RFC3339.search(text)[0])
    listing = client.get("/admin/consortium/proposal/").content.decode()
    assert _shown(proposal.deadline) in listing


def test_the_api_keeps_rfc_3339(delegates):
    proposal = open_proposal(delegates)
    r = api_as(delegates["fr"]).get(f"/api/v1/proposals/{proposal.pk}")
    assert r.status_code == 200, r.content
    assert r.json()["deadline"] == Proposal.objects.get().deadline
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z", r.json()["deadline"])


def test_amounts_are_grouped_on_pages_and_plain_in_forms_and_the_api(client, lumi):
    from contributions.models import Contribution
    from tests.steps.contributions import deliver, treaty

    treaty(lumi)
    deliver(lumi)  # Sweden's 1,000 SEK among them
    sek = Contribution.objects.get(currency="SEK")
    sign_in(client, lumi["people"]["rec_se"])
    page = client.get(f"/admin/contributions/contribution/{sek.pk}/change/").content.decode()
    assert "1,000" in page
    # A form given back with an error shows what was typed, digits as typed.
    form = client.post(
        "/admin/contributions/contribution/funds/",
        {"amount": "12345", "currency": "SEK", "date": "not a date"},
    ).content.decode()
    assert 'value="12345"' in form
    r = api_as(lumi["people"]["rec_se"]).get("/api/v1/contributions?kind=funds")
    assert r.status_code == 200, r.content
    (listed,) = [c for c in r.json()["results"] if c["id"] == str(sek.pk)]
    assert "," not in str(listed["amount"]) and "1000" in str(listed["amount"])
