"""Agreements in the admin: what each delegate sees, signing over the hashes shown,
proposing with a document upload, and the index's "awaiting your member" panel."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.files.uploadedfile import SimpleUploadedFile

from consortium.governance import proposals
from consortium.governance.models import Agreement, AgreementParty
from consortium.governance.votes import vote_cast
from ledger.services import Entry
from tests import worlds
from tests.steps.governance import propose, treaty_terms
from tests.steps.signin import sign_in

# Every test here starts from the same world: built once for the module (tests/worlds.py).
delegates = worlds.shared("delegates")

CHANGELIST = "/admin/consortium/agreement/"


def test_a_delegate_sees_the_agreements_and_what_awaits_its_signature(client, delegates):
    mine = propose(delegates, terms=treaty_terms(parties=("FR", "DE")))
    other = propose(delegates, terms=treaty_terms(parties=("DE", "IT")))
    sign_in(client, delegates["fr"])
    body = client.get(CHANGELIST).content.decode()
    assert str(mine.id) in body and str(other.id) in body
    assert body.count("awaiting your signature") == 2  # the filter, and the one row
    mine_only = client.get(f"{CHANGELIST}?awaiting=yes").content.decode()
    assert str(mine.id) in mine_only and str(other.id) not in mine_only
    page = client.get(f"{CHANGELIST}{mine.id}/change/").content.decode()
    assert "Parties" in page and "not signed yet" in page
    assert mine.terms_sha256 in page
    index = client.get("/admin/").content.decode()
    assert "Awaiting FR" in index and str(mine) in index


def test_signing_in_the_admin_shows_the_hashes_then_signs_exactly_those(client, delegates):
    a = propose(delegates)
    sign_in(client, delegates["fr"])
    # The list's action leads to the agreement's confirmation page, which signs nothing.
    data = {"action": "sign", ACTION_CHECKBOX_NAME: [str(a.id)]}
    to_confirm = client.post(CHANGELIST, data)
    assert to_confirm.status_code == 302
    confirm = client.get(to_confirm["Location"])
    assert confirm.status_code == 200
    assert (
        a.terms_sha256 in confirm.content.decode() and a.document_sha256 in confirm.content.decode()
    )
    assert not AgreementParty.objects.get(agreement=a, member="FR").signed_in
    signed = client.post(
        to_confirm["Location"],
        {"terms_sha256": a.terms_sha256, "document_sha256": a.document_sha256},
    )
    assert signed.status_code == 302
    assert AgreementParty.objects.get(agreement=a, member="FR").signed_in is not None
    # A confirmation carrying other hashes signs nothing.
    sign_in(client, delegates["de"])
    before = Entry.objects.count()
    client.post(
        f"{CHANGELIST}{a.id}/sign/",
        {"terms_sha256": "0" * 64, "document_sha256": a.document_sha256},
    )
    assert Entry.objects.count() == before


def test_a_recorder_cannot_sign_or_propose_in_the_admin(client, delegates):
    a = propose(delegates)
    sign_in(client, delegates["rec_fr"])
    before = Entry.objects.count()
    refused = client.post(
        f"{CHANGELIST}{a.id}/sign/",
        {"terms_sha256": a.terms_sha256, "document_sha256": a.document_sha256},
    )
    assert refused.status_code == 403
    assert Entry.objects.count() == before
    assert client.get(f"{CHANGELIST}propose/").status_code == 403


def test_proposing_in_the_admin_uploads_the_document_and_checks_the_terms(client, delegates):
    sign_in(client, delegates["de"])
    import json

    doc = SimpleUploadedFile("dsa.pdf", b"%PDF data sharing", content_type="application/pdf")
    bad = client.post(
        f"{CHANGELIST}propose/",
        {
            "kind": "treaty",
            "title": "T",
            "document": doc,
            "terms": json.dumps({**treaty_terms(), "accounting_unit": "XXX1"}),
        },
    )
    assert bad.status_code == 200 and "not an ISO 4217 currency code" in bad.content.decode()
    assert Agreement.objects.count() == 0
    doc = SimpleUploadedFile("dsa.pdf", b"%PDF data sharing", content_type="application/pdf")
    ok = client.post(
        f"{CHANGELIST}propose/",
        {
            "kind": "treaty",
            "title": "T",
            "document": doc,
            "terms": json.dumps(treaty_terms()),
        },
    )
    assert ok.status_code == 302, ok.content.decode()[:2000]
    a = Agreement.objects.get()
    assert a.document_name == "dsa.pdf"
    download = client.get(f"{CHANGELIST}{a.id}/document/")
    assert b"".join(download.streaming_content) == b"%PDF data sharing"


def test_the_index_lists_open_proposals_awaiting_the_members_vote(client, delegates):
    p = proposals.proposal_open(
        actor=delegates["ops"],
        title="Figures for Italy",
        actions=[
            {"type": "member.figures", "code": "IT", "figures": {"population": 60, "gni": "2100"}}
        ],
        deadline=datetime.now(UTC) + timedelta(hours=1),
    )
    sign_in(client, delegates["it"])
    assert "Figures for Italy" in client.get("/admin/").content.decode()
    vote_cast(actor=delegates["it"], proposal=p, choice="yes")
    assert "Figures for Italy" not in client.get("/admin/").content.decode()
    sign_in(client, delegates["aud"])
    assert "pending-work" not in client.get("/admin/").content.decode()


def test_the_service_forms_render_for_those_who_may_use_them(client, delegates):
    sign_in(client, delegates["fr"])
    body = client.get(f"{CHANGELIST}propose/").content.decode()
    assert 'enctype="multipart/form-data"' in body and 'value="Propose for signature"' in body
    sign_in(client, delegates["ops"])
    body = client.get("/admin/consortium/seat/assign/").content.decode()
    assert "enctype" not in body and 'value="Assign"' in body
