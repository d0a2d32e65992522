"""The permission matrix: every governance write path of the REST API against every
persona. A refused request gets a problem (403, or 404 where the target is not even
visible to the caller) and writes nothing to the ledger.

Personas (the delegates of tests/personas.py): a signatory of France, a recorder of
Germany, an auditor, the secretariat, and Italy's partner system (Italy's signatory, whose
only key is external).
The targets belong to France (and Germany, for the agreement).
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model

from consortium.governance import agreements, proposals
from consortium.governance.documents import document_store
from consortium.governance.member_keys import member_key_rotate
from consortium.governance.models import SeatHolder
from ledger.core.envelope import new_envelope, sign_envelope
from ledger.keys import EntrySigner, log_origin
from ledger.services import Entry, Key
from tests.steps.api import api_as

User = get_user_model()
PERSONAS = ("sig_fr", "rec_de", "auditor", "secretariat", "it_system")
TODAY = datetime.now(UTC).date().isoformat()


@pytest.fixture
def world(delegates):
    """The delegates by this matrix's names, Italy's key held by Italy's system alone, and
    an open treaty of France and Germany and an open proposal to vote on."""
    names = {"sig_fr": "fr", "sig_de": "de", "auditor": "aud", "secretariat": "ops"}
    names["it_system"] = "it"
    u = {n: delegates[names.get(n, n)] for n in (*PERSONAS, "sig_de", "rec_fr", "newcomer")}
    ops = u["secretariat"]
    # Italy holds its own key: the server's hosted key of Italy is rotated away.
    it_key = EntrySigner.generate("it-hsm")
    member_key_rotate(actor=u["it_system"], code="IT", public_key=it_key.public_key)
    doc = document_store(actor=ops, name="t.txt", content=b"treaty")
    terms = {
        "parties": ["FR", "DE"],
        "effective": {"from": TODAY, "until": None},
        "accounting_unit": "EUR",
        "cost_sharing": {"method": "scale", "shares": {"FR": "0.5", "DE": "0.5"}},
    }
    agreement = agreements.agreement_propose(
        actor=ops, kind="treaty", title="T", terms=terms, document_sha256=doc.sha256
    )
    proposal = proposals.proposal_open(
        actor=ops,
        title="P",
        actions=[{"type": "member.suspend", "code": "DE"}],
        deadline=datetime.now(UTC) + timedelta(hours=1),
    )
    return {
        "users": u,
        "agreement": agreement,
        "proposal": proposal,
        "it_key": it_key,
        "terms": terms,
        "doc": doc,
    }


def _it_vote(world) -> dict:
    env = new_envelope(
        kind="vote.cast",
        author=world["it_key"].fingerprint,
        payload={"proposal": str(world["proposal"].id), "choice": "no"},
    )
    sig = sign_envelope(env, world["it_key"].signing_key, log_origin()).signature
    return {"envelope": env, "signature": base64.b64encode(sig).decode()}


def _fr_key(world) -> str:
    return Key.objects.get(kind="member", owner="FR", revoked_at__isnull=True).fingerprint


# (name, request builder, who is allowed, status for each refused persona)
WRITES = {
    "apply": (
        lambda w: ("/api/v1/members", {"code": "ES", "figures": {"population": 5}}),
        {"secretariat"},
        {},
    ),
    "seat.assign": (
        lambda w: ("/api/v1/seats", {"username": "newcomer", "role": "recorder", "member": "FR"}),
        {"sig_fr", "secretariat"},
        {},
    ),
    "seat.vacate": (
        lambda w: (
            f"/api/v1/seats/{SeatHolder.objects.get(user=w['users']['rec_fr']).seat_id}/vacate",
            {"reason": "r"},
        ),
        {"sig_fr", "secretariat"},
        {"rec_de": 404, "it_system": 404},
    ),
    "proposal.open": (
        lambda w: (
            "/api/v1/proposals",
            {
                "title": "t",
                "deadline": (datetime.now(UTC) + timedelta(hours=2)).isoformat(),
                "actions": [{"type": "member.suspend", "code": "DE"}],
            },
        ),
        {"sig_fr", "secretariat"},
        {},
    ),
    "vote": (
        lambda w: (f"/api/v1/proposals/{w['proposal'].id}/votes", {"choice": "yes"}),
        {"sig_fr"},
        {},
    ),
    "document.upload": (
        lambda w: ("/api/v1/documents?name=x.txt", b"bytes"),
        {"sig_fr", "secretariat", "it_system"},
        {},
    ),
    "agreement.propose": (
        lambda w: (
            "/api/v1/agreements",
            {
                "kind": "treaty",
                "title": "T2",
                "terms": w["terms"],
                "document_sha256": w["doc"].sha256,
            },
        ),
        {"sig_fr", "secretariat"},
        {},
    ),
    "agreement.sign": (
        lambda w: (
            f"/api/v1/agreements/{w['agreement'].id}/signatures",
            {
                "terms_sha256": w["agreement"].terms_sha256,
                "document_sha256": w["agreement"].document_sha256,
            },
        ),
        {"sig_fr"},
        {},
    ),
    "agreement.withdraw": (
        lambda w: (f"/api/v1/agreements/{w['agreement'].id}/withdrawal", {"reason": "r"}),
        {"sig_fr"},
        {},
    ),
    "agreement.terminate": (
        lambda w: (f"/api/v1/agreements/{w['agreement'].id}/termination", {"reason": "r"}),
        {"secretariat"},
        {},
    ),
    "key.rotate": (
        lambda w: ("/api/v1/members/FR/keys/rotation", {}),
        {"sig_fr"},
        {},
    ),
    "key.revoke": (
        lambda w: (f"/api/v1/members/FR/keys/{_fr_key(w)}/revocation", {"reason": "r"}),
        set(),
        {"sig_fr": 409},  # France's only key: its own signatory is told why
    ),
    "entries.submit (Italy's vote)": (
        lambda w: ("/api/v1/ledger/entries", _it_vote(w)),
        {"it_system"},
        {},
    ),
}


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("write", list(WRITES))
def test_permission_matrix(world, write, persona):
    build, allowed, statuses = WRITES[write]
    url, body = build(world)
    client = api_as(world["users"][persona])
    before = Entry.objects.count()
    if isinstance(body, bytes):
        r = client.post(url, body, content_type="text/plain")
    else:
        r = client.post(url, body, format="json")
    if persona in allowed:
        assert r.status_code in (200, 201), (write, persona, r.content)
        if write != "document.upload":
            assert Entry.objects.count() > before
    else:
        expected = statuses.get(persona, 403)
        assert r.status_code == expected, (write, persona, r.content)
        assert r["Content-Type"] == "application/problem+json"
        assert Entry.objects.count() == before
