"""Every list of the API comes in cursor pages, in a stable order, and its filters refuse
what they cannot read: a page is ``{"next", "previous", "results"}``, a cursor the API did
not give is a 400, and no list is cut short without a ``next``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core import signing

from consortium.governance import proposals
from consortium.governance.models import Proposal
from consortium.web.pagination import SALT
from tests.steps.api import api_as

PROBLEM = "application/problem+json"


def _open(delegates, n: int) -> list[str]:
    """``n`` proposals, oldest first (their ids)."""
    return [
        str(
            proposals.proposal_open(
                actor=delegates["ops"],
                title=f"p{i}",
                deadline=datetime.now(UTC) + timedelta(hours=1),
                actions=[{"type": "member.suspend", "code": "IT"}],
            ).id
        )
        for i in range(n)
    ]


def _all(api, url: str) -> tuple[list[dict], int]:
    """Every item of a list, following ``next``; and the number of pages."""
    items, pages = [], 0
    while url:
        page = api.get(url).json()
        items, pages, url = items + page["results"], pages + 1, page["next"]
    return items, pages


def test_a_list_is_a_page_with_next_and_previous(delegates):
    page = api_as(delegates["fr"]).get("/api/v1/members").json()
    assert set(page) == {"next", "previous", "results"}
    assert (page["next"], page["previous"]) == (None, None)
    assert [m["code"] for m in page["results"]] == ["DE", "FR", "IT"]


def test_pages_follow_one_another_in_a_stable_order_both_ways(delegates):
    ids = _open(delegates, 5)
    api = api_as(delegates["fr"])
    items, pages = _all(api, "/api/v1/proposals?page_size=2")
    assert [p["id"] for p in items] == ids[::-1] and pages == 3  # newest first
    first = api.get("/api/v1/proposals?page_size=2").json()
    second = api.get(first["next"]).json()
    assert [p["id"] for p in api.get(second["previous"]).json()["results"]] == ids[:2:-1]


def test_filters_carry_over_to_the_next_page(delegates):
    ids = _open(delegates, 3)
    proposals.proposal_withdraw(actor=delegates["ops"], proposal=Proposal.objects.get(id=ids[1]))
    items, _ = _all(api_as(delegates["fr"]), "/api/v1/proposals?state=open&page_size=1")
    assert [p["id"] for p in items] == [ids[2], ids[0]]


@pytest.mark.parametrize("size", ["0", "1001", "-1", "x", "\u0661\u0660", "1.5"])
def test_a_page_size_outside_1_to_1000_is_a_400(delegates, size):
    r = api_as(delegates["fr"]).get(f"/api/v1/members?page_size={size}")
    assert r.status_code == 400 and r["Content-Type"] == PROBLEM
    assert r.json()["detail"].startswith("page_size is a whole number from 1 to 1000")


def test_an_empty_page_size_or_cursor_reads_as_absent(delegates):
    r = api_as(delegates["fr"]).get("/api/v1/members?page_size=&cursor=")
    assert r.status_code == 200 and len(r.json()["results"]) == 3


def _tampered(cursor: str) -> str:
    """The cursor with the last character of its signature changed (to one it is not)."""
    return cursor[:-1] + ("B" if cursor.endswith("A") else "A")


@pytest.mark.parametrize(
    "cursor",
    [
        "cD0x",  # DRF's own unsigned encoding of p=1
        signing.dumps([0, False, "FR"], salt="another salt"),
        _tampered(signing.dumps([0, False, "FR"], salt=SALT)),
        "\u00e9",
    ],
)
def test_a_cursor_the_api_did_not_give_is_a_400(delegates, cursor):
    r = api_as(delegates["fr"]).get("/api/v1/members", {"cursor": cursor})
    assert r.status_code == 400 and r["Content-Type"] == PROBLEM
    assert r.json()["detail"].startswith("cursor: not a cursor this list gave")


def test_a_cursor_is_signed_and_holds_the_position_the_next_page_starts_after(delegates):
    page = api_as(delegates["fr"]).get("/api/v1/members?page_size=1").json()
    assert [m["code"] for m in page["results"]] == ["DE"]
    cursor = parse_qs(urlsplit(page["next"]).query)["cursor"][0]
    assert signing.loads(cursor, salt=SALT) == [0, False, "DE"]


@pytest.mark.parametrize(
    ("url", "detail"),
    [
        (
            "/api/v1/proposals?state=maybe",
            "state must be one of open, accepted, rejected, withdrawn, expired, dropped",
        ),
        ("/api/v1/agreements?awaiting_signature=maybe", "awaiting_signature is true or false"),
        ("/api/v1/checkpoints?state=lost", "state must be one of published, blocked"),
        ("/api/v1/access/log?outcome=x", "outcome is served or denied"),
        ("/api/v1/access/log?to=31/12/2026", "to is a date, YYYY-MM-DD"),
        ("/api/v1/access/log?output=xml", "output is json or csv"),
    ],
)
def test_a_filter_refuses_what_it_cannot_read_naming_it(delegates, url, detail):
    r = api_as(delegates["aud"]).get(url)
    assert r.status_code == 400 and r["Content-Type"] == PROBLEM
    assert r.json()["detail"] == detail


def test_the_lists_filters_do_not_apply_to_one_object(delegates):
    (pk,) = _open(delegates, 1)
    r = api_as(delegates["fr"]).get(f"/api/v1/proposals/{pk}?state=maybe")
    assert r.status_code == 200 and r.json()["id"] == pk
