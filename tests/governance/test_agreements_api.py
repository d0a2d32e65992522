"""Agreements through the REST API: documents, proposal, signing with hosted keys and
with an external key, the "who has signed" view, and every refusal as problem+json with
nothing written."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime

import pytest
from django.contrib.auth import get_user_model

from consortium.governance.models import Agreement
from ledger.core.envelope import new_envelope, sign_envelope
from ledger.keys import log_origin
from ledger.services import Entry
from tests.steps.api import api_as
from tests.steps.governance import italy_with_an_external_key

User = get_user_model()
TODAY = datetime.now(UTC).date().isoformat()
PDF = b"%PDF-1.7 The consortium's founding treaty"


def terms(parties=("FR", "DE"), **extra):
    shares = dict.fromkeys(parties, "0.5")  # two parties, even shares
    return {
        "parties": list(parties),
        "effective": {"from": TODAY, "until": None},
        "accounting_unit": "EUR",
        "cost_sharing": {"method": "scale", "shares": shares},
        **extra,
    }


def upload(client, content=PDF, name="treaty.pdf"):
    return client.post(f"/api/v1/documents?name={name}", content, content_type="application/pdf")


def propose(client, body_terms=None, key=None, **extra):
    doc = upload(client).json()["sha256"]
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    body = {
        "kind": "treaty",
        "title": "Treaty",
        "terms": body_terms or terms(),
        "document_sha256": doc,
        **extra,
    }
    return client.post("/api/v1/agreements", body, format="json", **headers)


def sign_body(agreement: dict) -> dict:
    return {
        "terms_sha256": agreement["terms_sha256"],
        "document_sha256": agreement["document"]["sha256"],
    }


def test_propose_sign_and_see_who_has_signed(clients):
    up = upload(clients["fr"])
    assert up.status_code == 201 and up.json()["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert upload(clients["de"]).status_code == 200  # the same bytes: stored once
    r = propose(clients["fr"])
    assert r.status_code == 201, r.content
    a = r.json()
    assert a["state"] == "open" and [p["signed"] for p in a["parties"]] == [False, False]
    s = clients["fr"].post(f"/api/v1/agreements/{a['id']}/signatures", sign_body(a), format="json")
    assert s.status_code == 201 and s.json()["member"] == "FR" and s.json()["signed"]
    pending = clients["de"].get("/api/v1/agreements?awaiting_signature=true").json()["results"]
    assert [x["id"] for x in pending] == [a["id"]]
    assert clients["fr"].get("/api/v1/agreements?awaiting_signature=true").json()["results"] == []
    clients["de"].post(f"/api/v1/agreements/{a['id']}/signatures", sign_body(a), format="json")
    detail = clients["rec_de"].get(f"/api/v1/agreements/{a['id']}").json()
    assert detail["state"] == "in_force"
    assert {p["member"]: p["signed"] for p in detail["parties"]} == {"DE": True, "FR": True}
    doc = clients["rec_de"].get(detail["document"]["url"])
    assert doc.status_code == 200 and b"".join(doc.streaming_content) == PDF
    assert doc["ETag"] == f'"{hashlib.sha256(PDF).hexdigest()}"'


def test_a_non_party_reads_the_agreement_but_cannot_sign_it(clients, delegates):
    _it_key, it_user = italy_with_an_external_key(delegates)
    a = propose(clients["fr"]).json()
    it = api_as(it_user)
    assert [x["id"] for x in it.get("/api/v1/agreements").json()["results"]] == [a["id"]]
    assert it.get(a["document"]["url"]).status_code == 200
    before = Entry.objects.count()
    s = it.post(f"/api/v1/agreements/{a['id']}/signatures", sign_body(a), format="json")
    assert s.status_code == 403 and Entry.objects.count() == before


def test_a_user_without_a_seat_reads_nothing(clients):
    a = propose(clients["fr"]).json()
    outsider = clients["newcomer"]
    for url in (
        "/api/v1/agreements",
        f"/api/v1/agreements/{a['id']}",
        a["document"]["url"],
        "/api/v1/members",
        "/api/v1/proposals",
        "/api/v1/ledger/entries",
        "/api/v1/ledger/checkpoint",
    ):
        r = outsider.get(url)
        assert r.status_code == 403 and r.json()["detail"] == "you hold no seat in the consortium"


@pytest.mark.parametrize(
    ("who", "mutate", "status", "detail"),
    [
        ("rec_de", None, 403, "secretariat or a member's signatory"),
        ("aud", None, 403, "secretariat or a member's signatory"),
        ("ops", None, 403, "secretariat does not sign"),
        ("de", {"terms_sha256": "0" * 64}, 409, "terms hash you signed"),
        ("de", {"document_sha256": "abc"}, 400, "64 lowercase hex"),
    ],
)
def test_bad_signatures_get_a_problem_and_write_nothing(clients, who, mutate, status, detail):
    a = propose(clients["fr"]).json()
    before = Entry.objects.count()
    body = {**sign_body(a), **(mutate or {})}
    r = clients[who].post(f"/api/v1/agreements/{a['id']}/signatures", body, format="json")
    assert r.status_code == status, r.content
    assert r["Content-Type"] == "application/problem+json" and detail in r.json()["detail"]
    assert Entry.objects.count() == before


def test_terms_that_fail_the_schema_are_a_400_naming_the_field(clients):
    bad = terms()
    bad["cost_sharing"]["shares"]["FR"] = "0.9"
    before = (Entry.objects.count(), Agreement.objects.count())
    r = propose(clients["fr"], body_terms=bad)
    assert (
        r.status_code == 400 and "terms.cost_sharing.shares: must add up to 1" in r.json()["detail"]
    )
    r = propose(clients["fr"], body_terms={**terms(), "effective": {"from": "soon"}})
    assert r.status_code == 400 and "terms.effective" in r.json()["detail"]
    assert (Entry.objects.count(), Agreement.objects.count()) == before


def test_document_uploads_are_checked(clients):
    assert (
        clients["fr"].post("/api/v1/documents", PDF, content_type="application/pdf").status_code
        == 400
    )
    assert upload(clients["rec_de"]).status_code == 403
    assert upload(clients["fr"], content=b"").status_code == 400
    r = propose(clients["fr"], document_sha256="f" * 64)
    assert r.status_code == 400 and "upload the document first" in r.json()["detail"]


def test_document_size_is_limited(clients, settings):
    settings.AGREEMENT_DOCUMENT_MAX_BYTES = 10
    r = upload(clients["fr"], content=b"x" * 11)
    assert r.status_code == 413 and "larger than 10 bytes" in r.json()["detail"]


def test_a_retried_proposal_with_its_idempotency_key_creates_nothing_new(clients):
    first = propose(clients["fr"], key="t-1")
    again = propose(clients["fr"], key="t-1")
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"] and Agreement.objects.count() == 1


def test_withdrawal_and_termination(clients):
    a = propose(clients["fr"]).json()
    r = clients["de"].post(
        f"/api/v1/agreements/{a['id']}/withdrawal", {"reason": "no"}, format="json"
    )
    assert r.status_code == 201 and r.json()["withdrawn"]
    r = clients["fr"].post(
        f"/api/v1/agreements/{a['id']}/termination", {"reason": "x"}, format="json"
    )
    assert r.status_code == 403
    r = clients["ops"].post(
        f"/api/v1/agreements/{a['id']}/termination", {"reason": "x"}, format="json"
    )
    assert r.status_code == 200 and r.json()["state"] == "terminated"


def _submit(client, key, kind, payload):
    env = new_envelope(kind=kind, payload=payload, author=key.fingerprint)
    sig = base64.b64encode(sign_envelope(env, key.signing_key, log_origin()).signature).decode()
    return client.post("/api/v1/ledger/entries", {"envelope": env, "signature": sig}, format="json")


def test_a_member_with_an_external_key_signs_with_its_own_key(clients, delegates):
    it_key, it_user = italy_with_an_external_key(delegates)
    a = propose(clients["fr"], body_terms=terms(parties=("FR", "IT"))).json()
    it = api_as(it_user)
    payload = {"agreement": a["id"], **sign_body(a)}
    # Germany's system may not submit Italy's signature; a signature over other terms
    # is refused before it reaches the log.
    assert _submit(clients["de"], it_key, "agreement.signed", payload).status_code == 403
    wrong = {**payload, "terms_sha256": "1" * 64}
    r = _submit(it, it_key, "agreement.signed", wrong)
    assert r.status_code == 409 and "terms hash" in r.json()["detail"]
    r = _submit(it, it_key, "agreement.signed", payload)
    assert r.status_code == 201, r.content
    parties = {
        p["member"]: p["signed"] for p in it.get(f"/api/v1/agreements/{a['id']}").json()["parties"]
    }
    assert parties == {"FR": False, "IT": True}


def test_an_external_key_proposes_only_for_its_own_member(clients, delegates):
    it_key, it_user = italy_with_an_external_key(delegates)
    it = api_as(it_user)
    annex = upload(clients["fr"], content=b"France's confidential annex", name="annex.pdf").json()
    doc = upload(it).json()
    from consortium.governance.agreement_checks import terms_hash

    t = terms(parties=("FR", "DE"))
    payload = {
        "agreement": "7f1d3e36-62a6-4c3b-9f5e-0c7d3b2a1e10",
        "series": "7f1d3e36-62a6-4c3b-9f5e-0c7d3b2a1e10",
        "version": 1,
        "kind": "treaty",
        "title": "T",
        "terms": t,
        "terms_sha256": terms_hash(t),
        "document": {"sha256": doc["sha256"], "name": doc["name"], "size": doc["size"]},
        "supersedes": None,
    }
    r = _submit(it, it_key, "agreement.proposed", payload)
    assert (
        r.status_code == 403
        and "IT proposes only agreements it is a party to" in r.json()["detail"]
    )
    t2 = terms(parties=("IT", "DE"))
    ok = {**payload, "terms": t2, "terms_sha256": terms_hash(t2)}
    # A document Italy never held cannot be named to get at its bytes.
    stolen = {**ok, "document": {k: annex[k] for k in ("sha256", "name", "size")}}
    r = _submit(it, it_key, "agreement.proposed", stolen)
    assert r.status_code == 400 and "upload the document first" in r.json()["detail"]
    assert it.get(f"/api/v1/documents/{annex['sha256']}").status_code == 404
    r = _submit(it, it_key, "agreement.proposed", ok)
    assert r.status_code == 201, r.content
    assert Agreement.objects.get(id=payload["agreement"]).proposed_by == it_key.fingerprint
    seen = api_as(User.objects.get(username="it")).get("/api/v1/agreements").json()["results"]
    assert [x["id"] for x in seen] == [payload["agreement"]]


def test_an_external_signature_that_completes_an_agreement_brings_it_into_force(clients, delegates):
    it_key, it_user = italy_with_an_external_key(delegates)
    a = propose(clients["fr"], body_terms=terms(parties=("FR", "IT"))).json()
    clients["fr"].post(f"/api/v1/agreements/{a['id']}/signatures", sign_body(a), format="json")
    r = _submit(api_as(it_user), it_key, "agreement.signed", {"agreement": a["id"], **sign_body(a)})
    assert r.status_code == 201, r.content
    assert Agreement.objects.get(id=a["id"]).state == "in_force"
    assert (
        Entry.objects.order_by("-index").values_list("kind", flat=True)[0] == "agreement.in_force"
    )
