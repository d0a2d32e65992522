"""The read answers' validators and caching headers: the checkpoint is revalidated, and a
304 while it has not changed (a new cosignature or checkpoint is a new ETag); proofs for
given sizes and tiles never change and say so; the cosigned checkpoint is worked out once
per state of the log, its cosignatures and its policy, not once per request."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from ledger import services
from ledger.checkpoints import publish_checkpoint
from ledger.cosign.served import cosigned_checkpoint
from ledger.services import Draft


@pytest.fixture
def api(partner):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {partner[2]}")
    return client


@pytest.fixture
def grown(sample_signer):
    """A log of 40 entries with a checkpoint at 40; the signer, to grow it."""
    services.entries_append(
        signer=sample_signer, drafts=[Draft("test.sample", {"n": i}) for i in range(38)]
    )
    publish_checkpoint()
    return sample_signer


def test_the_checkpoint_is_a_304_while_it_has_not_changed(api, grown):
    first = api.get("/api/v1/ledger/checkpoint")
    assert first.status_code == 200 and first["Cache-Control"] == "no-cache"
    tag = first["ETag"]
    assert tag.startswith('"40-') and tag.endswith('"')
    again = api.get("/api/v1/ledger/checkpoint", HTTP_IF_NONE_MATCH=tag)
    assert again.status_code == 304 and again.content == b""
    assert again["ETag"] == tag and again["Witness-Policy"] == "none"
    # A list of validators, weak or not, matches too; another validator does not.
    listed = api.get("/api/v1/ledger/checkpoint", HTTP_IF_NONE_MATCH=f'"1-00", W/{tag}')
    assert listed.status_code == 304
    other = api.get("/api/v1/ledger/checkpoint", HTTP_IF_NONE_MATCH='"40-00"')
    assert other.status_code == 200 and other.content == first.content


def test_a_new_checkpoint_is_a_new_etag_and_a_full_answer(api, grown):
    tag = api.get("/api/v1/ledger/checkpoint")["ETag"]
    services.entries_append(signer=grown, drafts=[Draft("test.sample", {"n": "more"})])
    publish_checkpoint()
    fresh = api.get("/api/v1/ledger/checkpoint", HTTP_IF_NONE_MATCH=tag)
    assert fresh.status_code == 200 and fresh["ETag"].startswith('"41-')
    assert fresh.content.decode().splitlines()[1] == "41"


def test_the_latest_checkpoint_has_its_etag_too(api, grown):
    first = api.get("/api/v1/ledger/checkpoint/latest")
    again = api.get("/api/v1/ledger/checkpoint/latest", HTTP_IF_NONE_MATCH=first["ETag"])
    assert first.status_code == 200 and again.status_code == 304


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/ledger/proofs/inclusion?index=7&tree_size=40",
        "/api/v1/ledger/proofs/consistency?from=13&to=40",
        "/api/v1/ledger/tlog/tile/0/000.p/40",
    ],
)
def test_proofs_in_given_sizes_and_tiles_are_immutable(api, grown, path):
    first = api.get(path)
    assert first.status_code == 200
    assert first["Cache-Control"] == "private, max-age=31536000, immutable"
    again = api.get(path, HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 304 and again["ETag"] == first["ETag"]
    assert again["Cache-Control"] == first["Cache-Control"]


def test_different_proofs_have_different_etags(api, grown):
    tags = {
        api.get(f"/api/v1/ledger/proofs/inclusion?index={i}&tree_size={n}")["ETag"]
        for i, n in ((7, 40), (8, 40), (7, 39))
    }
    assert len(tags) == 3


def test_a_tlog_proof_is_revalidated_against_the_checkpoint_that_moves_on(api, grown):
    first = api.get("/api/v1/ledger/entries/5/tlog-proof")
    assert first.status_code == 200 and first["Cache-Control"] == "no-cache"
    assert (
        api.get("/api/v1/ledger/entries/5/tlog-proof", HTTP_IF_NONE_MATCH=first["ETag"]).status_code
        == 304
    )
    services.entries_append(signer=grown, drafts=[Draft("test.sample", {"n": "more"})])
    publish_checkpoint()
    moved = api.get("/api/v1/ledger/entries/5/tlog-proof", HTTP_IF_NONE_MATCH=first["ETag"])
    assert moved.status_code == 200 and moved["ETag"] != first["ETag"]


def test_the_cosigned_checkpoint_is_worked_out_once_per_state(grown):
    first = cosigned_checkpoint()
    with CaptureQueriesContext(connection) as seen:
        again = cosigned_checkpoint()
    assert again is first and len(seen.captured_queries) == 1
    services.entries_append(signer=grown, drafts=[Draft("test.sample", {"n": "more"})])
    assert cosigned_checkpoint() is not first  # the log moved: worked out afresh
    publish_checkpoint()
    assert cosigned_checkpoint().checkpoint.tree_size == 41
