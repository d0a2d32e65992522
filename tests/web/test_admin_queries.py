"""The admin's cost per page stays flat as the log grows: the seat check is asked once a
request (not once for each model of the sidebar), and the entries list takes its count
from the log's size instead of counting every row."""

from __future__ import annotations

import re

from django.contrib import admin
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from ledger import services
from ledger.models import Entry
from ledger.services import Draft, key_register, log_signer
from tests.steps.signin import sign_in


def _queries(client, url):
    with CaptureQueriesContext(connection) as captured:
        page = client.get(url)
    assert page.status_code == 200, url
    return page.content.decode(), [q["sql"] for q in captured]


def test_the_entries_list_counts_the_log_without_counting_rows(client, delegates):
    _, signer = key_register(signer=log_signer(), kind="service", owner="bulk", name="bulk")
    with transaction.atomic(durable=True):
        services.entries_append(
            signer=signer, drafts=[Draft("demo.note", {"n": n}) for n in range(250)]
        )
    size = Entry.objects.count()
    sign_in(client, delegates["fr"])
    page, queries = _queries(client, "/admin/ledger/entry/")
    assert re.search(rf"\b{size} entries\b", page), size  # (under 1,000: no separator)
    assert not [q for q in queries if "COUNT(" in q and "ledger_entry" in q]
    # Filtered by kind, the count is that of the kind.
    page, _ = _queries(client, "/admin/ledger/entry/?kind=demo.note")
    assert re.search(r"\b250 entries\b", page)
    # The seat is looked up a few times a page (the admin's check, the dashboard's panels),
    # not once for every one of the sidebar's models.
    _, queries = _queries(client, "/admin/")
    models = len(admin.site._registry)
    assert models > 20
    assert len([q for q in queries if "consortium_seatholder" in q]) <= 8
