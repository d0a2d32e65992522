"""The API's edges, as probed from outside with DEBUG off: lone surrogates, bodies over
the limits, a wrong key-encryption key, idempotent retries after a later request, and
the schema agreeing with what is answered. Every refusal is a problem with nothing
written."""

from __future__ import annotations

import base64

import pytest
from django.conf import settings as django_settings

from consortium.governance.models import Member, Vote
from consortium.governance.votes import vote_cast
from consortium.web.models import IdempotentResponse
from ledger.core.envelope import new_envelope, signing_message
from ledger.keys import log_origin
from ledger.services import Entry, canonical
from tests.steps.api import api_as
from tests.steps.governance import open_proposal, propose, treaty_terms

PROBLEM = "application/problem+json"


def _outside(user):
    """A client of ``user`` that answers as a server with DEBUG off would."""
    return api_as(user, raise_request_exception=False)


def test_the_tests_run_with_debug_off():
    assert django_settings.DEBUG is False


# --- lone surrogates ------------------------------------------------------------------------


def _raw(client, url, text):
    return client.post(url, text.encode(), content_type="application/json")


@pytest.mark.parametrize(
    ("who", "url", "body"),
    [
        ("fr", "/api/v1/proposals/{p}/votes", '{"choice": "\\ud800"}'),
        ("ops", "/api/v1/members", '{"code": "ES", "kind": "\\udfff"}'),
        (
            "ops",
            "/api/v1/agreements",
            '{"kind": "\\ud800", "title": "t", "terms": {}, "document_sha256": "' + "a" * 64 + '"}',
        ),
        ("rec_fr", "/api/v1/checkpoints/" + "c" * 64 + "/downloads", '{"scope": "\\ud83d"}'),
        ("ops", "/api/v1/seats", '{"username": "fr", "role": "\\ud800", "member": "FR"}'),
        ("fr", "/api/v1/proposals/{p}/votes", '{"\\ud800": "yes"}'),
        ("fr", "/api/v1/ledger/entries", '{"envelope": {"kind": "a\\udc00"}, "signature": "x"}'),
    ],
)
def test_a_lone_surrogate_anywhere_in_a_body_is_a_400(delegates, who, url, body):
    p = open_proposal(delegates)
    before = Entry.objects.count()
    r = _raw(_outside(delegates[who]), url.format(p=p.id), body)
    assert r.status_code == 400 and r["Content-Type"] == PROBLEM
    assert "lone surrogate" in r.json()["detail"]
    assert Entry.objects.count() == before


def test_a_surrogate_pair_is_a_character_and_is_echoed_back(delegates):
    r = _raw(
        _outside(delegates["fr"]),
        f"/api/v1/proposals/{open_proposal(delegates).id}/votes",
        '{"choice": "\\ud83d\\ude00"}',
    )
    assert r.status_code == 400 and "\U0001f600" in r.json()["detail"]


# --- bodies over the limits ------------------------------------------------------------------


def test_a_json_body_over_the_upload_limit_is_a_413(delegates, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2000
    p = open_proposal(delegates)
    before = Entry.objects.count()
    r = _outside(delegates["fr"]).post(
        f"/api/v1/proposals/{p.id}/votes", {"choice": "yes", "pad": "x" * 3000}, format="json"
    )
    assert r.status_code == 413 and r["Content-Type"] == PROBLEM
    assert "larger than 2000 bytes" in r.json()["detail"]
    assert Entry.objects.count() == before and not Vote.objects.exists()


def test_a_document_is_held_to_its_own_limit_not_the_json_one(delegates, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2000
    settings.AGREEMENT_DOCUMENT_MAX_BYTES = 5000
    api = _outside(delegates["fr"])
    ok = api.post("/api/v1/documents?name=a.txt", b"a" * 4000, content_type="text/plain")
    assert ok.status_code == 201
    big = api.post("/api/v1/documents?name=b.txt", b"b" * 5001, content_type="text/plain")
    assert big.status_code == 413 and big["Content-Type"] == PROBLEM


def test_a_submitted_envelope_over_the_envelope_limit_is_a_413(delegates):
    from ledger import services
    from ledger.keys import EntrySigner
    from ledger.services import log_signer

    key = EntrySigner.generate("fr-ext")
    services.key_register(
        signer=log_signer(), kind="member", owner="FR", name="fr-ext", public_key=key.public_key
    )
    env = new_envelope(
        kind="vote.cast",
        author=key.fingerprint,
        payload={"proposal": "p", "choice": "yes", "pad": "x" * 300_000},
    )
    signature = key.signing_key.sign(signing_message(canonical(env), log_origin())).signature
    before = Entry.objects.count()
    r = _outside(delegates["fr"]).post(
        "/api/v1/ledger/entries",
        {"envelope": env, "signature": base64.b64encode(signature).decode()},
        format="json",
    )
    assert r.status_code == 413 and r["Content-Type"] == PROBLEM
    assert "an envelope is at most 65364 bytes" in r.json()["detail"]
    assert Entry.objects.count() == before


def test_an_entry_a_service_would_make_over_the_leaf_limit_is_a_413(delegates, monkeypatch):
    # Every entry the system makes fits a leaf of 65,535 bytes; lowered here, the seat's
    # entry does not, and the refusal reaches the client as the problem it is.
    from consortium.governance.models import SeatHolder
    from ledger import log

    monkeypatch.setattr(log, "MAX_LEAF_BYTES", 300)
    before = Entry.objects.count()
    r = _outside(delegates["ops"]).post(
        "/api/v1/seats", {"username": "newcomer", "role": "observer", "member": "IT"}, format="json"
    )
    assert r.status_code == 413 and r["Content-Type"] == PROBLEM
    detail = r.json()["detail"]
    assert "seat.assigned" in detail and "its leaf would be" in detail
    assert "a leaf is at most 300 bytes" in detail
    assert Entry.objects.count() == before
    assert not SeatHolder.objects.filter(user=delegates["newcomer"]).exists()


# --- a wrong key-encryption key ----------------------------------------------------------------


def test_a_wrong_kek_is_the_same_409_for_a_members_key_as_for_the_secretariats(delegates, settings):
    p = open_proposal(delegates)
    settings.LEDGER_KEK = "11" * 32  # not the key the hosted keys were sealed under
    before = Entry.objects.count()
    answers = [
        _outside(delegates["fr"]).post("/api/v1/members/FR/keys/rotation", {}, format="json"),
        _outside(delegates["de"]).post(
            f"/api/v1/proposals/{p.id}/votes", {"choice": "no"}, format="json"
        ),
        _outside(delegates["ops"]).post("/api/v1/members", {"code": "ES"}, format="json"),
    ]
    for r in answers:
        assert r.status_code == 409 and r["Content-Type"] == PROBLEM, r.content
        assert r.json()["detail"].startswith("this key was sealed under key-encryption key")
        assert r.json()["detail"].endswith(f"but LEDGER_KEK is {_kek_id()}")
    assert Entry.objects.count() == before
    assert not Member.objects.filter(code="ES").exists()


def _kek_id() -> str:
    from ledger.keys import kek_box

    return kek_box()[1]


# --- idempotent retries --------------------------------------------------------------------------


def test_a_vote_retried_after_a_later_vote_answers_as_it_first_did(delegates):
    p = open_proposal(delegates)
    api = _outside(delegates["fr"])
    url = f"/api/v1/proposals/{p.id}/votes"
    yes = api.post(url, {"choice": "yes"}, format="json", HTTP_IDEMPOTENCY_KEY="A")
    no = api.post(url, {"choice": "no"}, format="json", HTTP_IDEMPOTENCY_KEY="B")
    assert yes.status_code == no.status_code == 201
    written = Entry.objects.count()
    again = api.post(url, {"choice": "yes"}, format="json", HTTP_IDEMPOTENCY_KEY="A")
    assert again.status_code == 201 and again.json() == yes.json()
    assert again.json()["choice"] == "yes"
    assert Entry.objects.count() == written
    assert Vote.objects.get(member_id="FR").choice == "no"  # the later vote stands


def test_the_service_answers_a_retry_from_the_entry_it_wrote_too(delegates):
    """Should the stored answer be missing (the process stopped between the commit and
    storing it), the service's own replay still answers from the first entry."""
    p = open_proposal(delegates)
    first = vote_cast(actor=delegates["fr"], proposal=p, choice="yes", idempotency_key="A")
    vote_cast(actor=delegates["fr"], proposal=p, choice="no", idempotency_key="B")
    again = vote_cast(actor=delegates["fr"], proposal=p, choice="yes", idempotency_key="A")
    assert (again.choice, again.cast_in, again.cast_at) == ("yes", first.cast_in, first.cast_at)


def test_a_retry_of_a_withdrawal_after_the_agreement_moved_on_answers_as_first(delegates):
    a = propose(delegates, terms=treaty_terms(parties=("FR", "DE")))
    api = _outside(delegates["fr"])
    url = f"/api/v1/agreements/{a.id}/withdrawal"
    first = api.post(url, {"reason": "no"}, format="json", HTTP_IDEMPOTENCY_KEY="w")
    assert first.status_code == 201
    _outside(delegates["ops"]).post(
        f"/api/v1/agreements/{a.id}/termination", {"reason": "x"}, format="json"
    )
    written = Entry.objects.count()
    again = api.post(url, {"reason": "no"}, format="json", HTTP_IDEMPOTENCY_KEY="w")
    assert (again.status_code, again.json()) == (201, first.json())
    assert Entry.objects.count() == written


def test_keys_are_each_users_own_and_refusals_are_not_kept(delegates):
    p = open_proposal(delegates)
    url = f"/api/v1/proposals/{p.id}/votes"
    fr, de = _outside(delegates["fr"]), _outside(delegates["de"])
    assert (
        fr.post(url, {"choice": "maybe"}, format="json", HTTP_IDEMPOTENCY_KEY="k").status_code
        == 400
    )
    assert not IdempotentResponse.objects.exists()
    assert (
        fr.post(url, {"choice": "yes"}, format="json", HTTP_IDEMPOTENCY_KEY="k").json()["member"]
        == "FR"
    )
    theirs = de.post(url, {"choice": "yes"}, format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert theirs.status_code == 201 and theirs.json()["member"] == "DE"
    other = fr.post(url, {"choice": "no"}, format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert other.status_code == 409 and "Idempotency-Key" in other.json()["detail"]


def test_a_document_upload_is_replayed_by_its_key(delegates):
    api = _outside(delegates["fr"])
    url = "/api/v1/documents?name=t.txt"
    first = api.post(url, b"text", content_type="text/plain", HTTP_IDEMPOTENCY_KEY="d")
    again = api.post(url, b"text", content_type="text/plain", HTTP_IDEMPOTENCY_KEY="d")
    assert first.status_code == again.status_code == 201 and again.json() == first.json()
    other = api.post(url, b"other", content_type="text/plain", HTTP_IDEMPOTENCY_KEY="d")
    assert other.status_code == 409


# --- the schema agrees with the answers ----------------------------------------------------------


@pytest.fixture
def schema():
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)


def test_the_access_log_is_a_page_of_a_list_in_the_schema_as_in_the_answer(delegates, schema):
    r = _outside(delegates["fr"]).get("/api/v1/access/log")
    assert r.status_code == 200 and r.json() == {"next": None, "previous": None, "results": []}
    declared = schema["paths"]["/api/v1/access/log"]["get"]["responses"]["200"]["content"]
    page = declared["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    results = schema["components"]["schemas"][page]["properties"]["results"]
    assert results["type"] == "array"
    item = results["items"]["$ref"].rsplit("/", 1)[1]
    assert set(schema["components"]["schemas"][item]["properties"]) >= {"at", "outcome", "path"}


def test_every_error_the_schema_names_is_problem_json(schema):
    for path, item in schema["paths"].items():
        for method, op in item.items():
            for code, response in op["responses"].items():
                if code[0] in "45":
                    assert set(response["content"]) == {PROBLEM}, (path, method, code)
            assert "400" in op["responses"] and "401" in op["responses"], (path, method)


def test_request_bodies_declare_that_they_take_no_other_field(schema):
    ref = schema["paths"]["/api/v1/proposals/{id}/votes"]["post"]["requestBody"]["content"][
        "application/json"
    ]["schema"]["$ref"]
    assert schema["components"]["schemas"][ref.rsplit("/", 1)[1]]["additionalProperties"] is False


@pytest.mark.parametrize(
    "url", ["/api/v1/documents", "/api/v1/members", "/api/v1/contributions/data", "/api/v1/seats"]
)
def test_options_names_the_view_and_leaves_the_bodies_to_the_schema(delegates, url):
    r = _outside(delegates["fr"]).options(url)
    assert r.status_code == 200 and set(r.json()) == {"name", "description", "renders", "parses"}
