"""The admin shows history and never lets anyone add, change or delete it."""

from __future__ import annotations

import pytest

from ledger import checkpoints, services
from ledger.services import Draft
from tests.steps.ledger import triggers_disabled
from tests.steps.signin import sign_in


@pytest.fixture
def history(sample_signer):
    services.entries_append(
        signer=sample_signer, drafts=[Draft("test.sample", {"n": i}) for i in range(5)]
    )
    checkpoints.publish_checkpoint()


@pytest.mark.parametrize("model", ["entry", "checkpoint", "key"])
def test_history_lists_load_and_offer_no_add(admin_client, history, model):
    r = admin_client.get(f"/admin/ledger/{model}/")
    assert r.status_code == 200
    assert f"/admin/ledger/{model}/add/" not in r.content.decode()
    assert admin_client.get(f"/admin/ledger/{model}/add/").status_code == 403


def test_an_entry_page_is_read_only_and_cannot_be_deleted(admin_client, history):
    r = admin_client.get("/admin/ledger/entry/3/change/")
    assert r.status_code == 200
    assert b'name="_save"' not in r.content
    assert admin_client.post("/admin/ledger/entry/3/delete/", {"post": "yes"}).status_code == 403
    assert admin_client.post("/admin/ledger/entry/3/change/", {"kind": "x.y"}).status_code == 403


@pytest.mark.parametrize(
    ("term", "expected"),
    [("key.registered", [1]), ("log.genesis", [0]), ("test.sample", [2, 3, 4, 5, 6])],
)
def test_entries_are_searchable_by_kind(admin_client, history, term, expected):
    body = admin_client.get("/admin/ledger/entry/", {"q": term}).content.decode()
    for index in expected:
        assert f"/admin/ledger/entry/{index}/change/" in body
    assert body.count("/change/") == len(expected)


def test_a_number_finds_that_index(admin_client, history):
    from ledger.models import Entry

    body = admin_client.get("/admin/ledger/entry/", {"q": "3"}).content.decode()
    assert "/admin/ledger/entry/3/change/" in body
    # A fingerprint may begin with the same digit: those entries are found too.
    also = Entry.objects.filter(author__startswith="3").exclude(index=3).count()
    assert body.count("/change/") == 1 + also


def test_entries_are_searchable_by_author_prefix(admin_client, history, sample_signer):
    r = admin_client.get("/admin/ledger/entry/", {"q": sample_signer.fingerprint[:12]})
    assert r.content.decode().count("/change/") == 5


def test_an_ordinary_user_cannot_reach_the_admin(client, django_user_model, history):
    user = django_user_model.objects.create_user("observer", password="not-a-secret-1")
    sign_in(client, user)
    assert client.get("/admin/ledger/entry/").status_code == 302


@pytest.mark.parametrize("term", ["²", "9" * 40, "'; DROP TABLE x; --"])
def test_odd_search_terms_do_not_break_the_lists(admin_client, history, term):
    assert admin_client.get("/admin/ledger/entry/", {"q": term}).status_code == 200
    assert admin_client.get("/admin/ledger/checkpoint/", {"q": term}).status_code == 200


@pytest.mark.parametrize("leaf", [b"{}", b"not json", b'{"entry": 1}'])
def test_a_damaged_leaf_is_shown_as_such_not_as_a_server_error(admin_client, history, leaf):
    """What an operator opens after a verification alarm must load."""
    with triggers_disabled() as cur:
        cur.execute('UPDATE ledger_entry SET leaf = %s WHERE "index" = 3', [leaf])
    listing = admin_client.get("/admin/ledger/entry/")
    assert listing.status_code == 200 and b"unreadable leaf" in listing.content
    page = admin_client.get("/admin/ledger/entry/3/change/")
    assert page.status_code == 200 and b"unreadable leaf" in page.content
