"""The read API: what a partner system sees, and what an outsider gets."""

from __future__ import annotations

import base64

import pytest
from rest_framework.test import APIClient

from ledger import services
from ledger.checkpoints import publish_checkpoint
from ledger.core import merkle
from ledger.core.note import open_checkpoint, parse_verifier_key
from ledger.models import Key
from ledger.proofs import root_at
from ledger.services import Draft


@pytest.fixture
def api(partner):
    _, _, plaintext = partner
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return client


@pytest.fixture
def history(sample_signer):
    services.entries_append(
        signer=sample_signer, drafts=[Draft("test.sample", {"n": i}) for i in range(30)]
    )
    publish_checkpoint()
    return 32


def _problem(response, status):
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body["detail"]
    return body


def test_the_checkpoint_is_the_exact_signed_note_and_verifies(api, history):
    r = api.get("/api/v1/ledger/checkpoint")
    assert r.status_code == 200
    assert r["Content-Type"].startswith("text/plain")
    note = r.content.decode()
    vkey = Key.objects.get(kind="log").verifier_key
    cp = open_checkpoint(note, parse_verifier_key(vkey), origin="test.ledger.example")
    assert cp.size == history
    assert cp.root == root_at(history)


def test_no_checkpoint_yet_is_a_404_problem(api, db):
    _problem(api.get("/api/v1/ledger/checkpoint"), 404)


def test_entries_page_forward_with_a_cursor(api, history):
    r = api.get("/api/v1/ledger/entries?limit=10")
    body = r.json()
    assert [e["index"] for e in body["entries"]] == list(range(10))
    assert body["tree_size"] == history
    seen = [e["index"] for e in body["entries"]]
    while body["next"]:
        body = api.get(body["next"]).json()
        seen += [e["index"] for e in body["entries"]]
    assert seen == list(range(history))


def test_entries_filter_by_kind(api, history):
    body = api.get("/api/v1/ledger/entries?kind=key.registered").json()
    assert [e["kind"] for e in body["entries"]] == ["key.registered"]


def test_the_next_page_repeats_the_limit_and_the_kind(api, history):
    body = api.get("/api/v1/ledger/entries?kind=test.sample&limit=2&page_size=7").json()
    assert [e["index"] for e in body["entries"]] == [2, 3]
    assert (
        body["next"] == "http://testserver/api/v1/ledger/entries?after=3&limit=2&kind=test.sample"
    )
    last = api.get("/api/v1/ledger/entries?after=30").json()
    assert ([e["index"] for e in last["entries"]], last["next"]) == ([31], None)


def test_one_entry_carries_its_exact_leaf_and_leaf_hash(api, history):
    e = api.get("/api/v1/ledger/entries/5").json()
    leaf = base64.b64decode(e["leaf"])
    assert base64.b64decode(e["leaf_hash"]) == merkle.leaf_hash(leaf)
    assert e["index"] == 5 and e["kind"] == "test.sample" and e["payload"] == {"n": 3}


def test_an_inclusion_proof_verifies_against_the_checkpoint_root(api, history):
    for index in (0, 5, 31):
        e = api.get(f"/api/v1/ledger/entries/{index}").json()
        p = api.get(f"/api/v1/ledger/proofs/inclusion?index={index}&tree_size={history}").json()
        assert (p["index"], p["tree_size"]) == (index, history)
        proof = [base64.b64decode(h) for h in p["proof"]]
        merkle.verify_inclusion(
            index, history, base64.b64decode(e["leaf_hash"]), proof, root_at(history)
        )


def test_a_consistency_proof_verifies_between_two_sizes(api, history):
    p = api.get("/api/v1/ledger/proofs/consistency?from=7&to=32").json()
    assert (p["from"], p["to"]) == (7, 32)
    proof = [base64.b64decode(h) for h in p["proof"]]
    merkle.verify_consistency(7, 32, root_at(7), root_at(32), proof)


def test_the_key_registry_lists_keys_with_their_validity(api, history):
    keys = api.get("/api/v1/ledger/keys").json()["results"]
    assert [(k["kind"], k["valid_from"], k["revoked_at"]) for k in keys] == [
        ("log", 0, None),
        ("service", 2, None),
    ]
    assert [k["kind"] for k in api.get("/api/v1/ledger/keys?kind=service").json()["results"]] == [
        "service"
    ]
    _problem(api.get("/api/v1/ledger/keys?kind=nope"), 400)


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/api/v1/ledger/entries?after=abc", "after"),
        ("/api/v1/ledger/entries?limit=0", "limit"),
        ("/api/v1/ledger/entries?limit=100000", "limit"),
        ("/api/v1/ledger/proofs/inclusion?index=x&tree_size=3", "index"),
        ("/api/v1/ledger/proofs/inclusion?index=3", "tree_size"),
        ("/api/v1/ledger/proofs/inclusion?index=5&tree_size=5", "index"),
        ("/api/v1/ledger/proofs/inclusion?index=0&tree_size=99999999999999999999", "tree_size"),
        ("/api/v1/ledger/proofs/consistency?from=9&to=3", "from"),
        ("/api/v1/ledger/proofs/consistency?from=0&to=3", "from"),
        ("/api/v1/ledger/proofs/consistency?from=-1&to=3", "from"),
        ("/api/v1/ledger/proofs/consistency?to=3", "from"),
    ],
)
def test_bad_parameters_get_a_400_problem_naming_the_field(api, history, url, field):
    body = _problem(api.get(url), 400)
    assert field in body["detail"]


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/ledger/proofs/inclusion?index=0&tree_size=33",
        "/api/v1/ledger/proofs/consistency?from=3&to=33",
    ],
)
def test_a_size_past_the_tree_is_a_400_problem(api, history, url):
    assert "larger than the tree" in _problem(api.get(url), 400)["detail"]


def test_an_index_past_the_tree_is_a_404_problem(api, history):
    _problem(api.get("/api/v1/ledger/entries/32"), 404)


def test_an_unknown_api_url_is_a_404_problem(api, db):
    _problem(api.get("/api/v1/ledger/nothing-here"), 404)


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/ledger/checkpoint",
        "/api/v1/ledger/entries",
        "/api/v1/ledger/entries/0",
        "/api/v1/ledger/proofs/inclusion?index=0&tree_size=1",
        "/api/v1/ledger/keys",
    ],
)
def test_an_outsider_without_credentials_gets_401(db, url):
    r = APIClient().get(url)
    _problem(r, 401)
    assert r["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "header",
    ["Bearer nonsense", "Bearer clt_000000000000_" + "a" * 43, "Bearer "],
)
def test_a_bad_token_gets_401(db, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    _problem(client.get("/api/v1/ledger/keys"), 401)


def test_writes_are_not_allowed_on_read_endpoints(api, history):
    _problem(api.post("/api/v1/ledger/keys", {}, format="json"), 405)
    _problem(api.delete("/api/v1/ledger/entries/3"), 405)


def test_a_logged_in_admin_session_can_read(admin_client, history):
    assert admin_client.get("/api/v1/ledger/entries/0").status_code == 200


def test_the_openapi_schema_and_docs_are_served_without_a_cdn(admin_client):
    schema = admin_client.get("/api/v1/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/ledger/proofs/consistency" in schema.content
    docs = admin_client.get("/api/v1/docs/")
    assert docs.status_code == 200
    assert b"cdn" not in docs.content.lower()


def test_a_disallowed_host_is_a_400_problem_not_an_html_page(api, history):
    r = api.get("/api/v1/ledger/keys", HTTP_HOST="evil.example")
    _problem(r, 400)
