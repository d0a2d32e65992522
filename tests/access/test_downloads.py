"""The download flow: authorisation on the ledger, tokens signed by the log key, bytes
served with Range and ETag, the entitlement checked again at serving time, and every
served file and refused request in the access log."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.urls import reverse

from consortium.access import downloads
from consortium.access.models import DownloadEvent
from consortium.governance import proposals
from consortium.governance.votes import vote_cast
from ledger.services import Entry, Key
from tests.steps.access import WEIGHTS, authorize, streamed
from tests.steps.api import api_as
from tests.steps.contributions import deliver, treaty
from tests.steps.governance import decide_after_deadline, suspend_in_lumi
from tests.steps.signin import sign_in


def test_an_allowed_download_is_on_the_ledger_and_served(lumi, checkpoint):
    r = authorize(lumi, checkpoint.digest)
    assert r.status_code == 201, r.content
    body = r.json()
    entry = Entry.objects.get(kind="download.authorized")
    assert entry.payload["member"] == "SE" and entry.payload["files"] == ["model.safetensors"]
    assert entry.payload["rule"] == body["rule"] and "balance ratio" in body["rule"]
    # Anyone with the verifier key checks the token offline.
    log_key = bytes(Key.objects.get(kind="log").public_key)
    token = downloads.verify_token(body["token"], log_key)
    assert (token.member, token.checkpoint, token.tid) == (
        "SE",
        checkpoint.digest,
        entry.payload["token"],
    )
    got = api_as(lumi["people"]["rec_se"]).get(body["files"]["model.safetensors"])
    assert got.status_code == 200 and streamed(got) == WEIGHTS
    assert got["ETag"] == f'"{hashlib.sha256(WEIGHTS).hexdigest()}"'
    assert DownloadEvent.objects.filter(outcome="served", member="SE").count() == 1


def test_ranges_are_served_and_bad_ranges_are_416(lumi, checkpoint):
    url = authorize(lumi, checkpoint.digest).json()["files"]["model.safetensors"]
    api = api_as(lumi["people"]["rec_se"])
    part = api.get(url, HTTP_RANGE="bytes=10-19")
    assert part.status_code == 206 and streamed(part) == WEIGHTS[10:20]
    assert part["Content-Range"] == f"bytes 10-19/{len(WEIGHTS)}"
    assert streamed(api.get(url, HTTP_RANGE="bytes=-5")) == WEIGHTS[-5:]
    assert streamed(api.get(url, HTTP_RANGE=f"bytes={len(WEIGHTS) - 3}-")) == WEIGHTS[-3:]
    for bad in (
        "bytes=abc",
        "bytes=5-2",
        f"bytes={len(WEIGHTS)}-",
        "bytes=0-1,5-6",
        "items=0-1",
        "bytes=-0",
    ):
        r = api.get(url, HTTP_RANGE=bad)
        assert r.status_code == 416, bad
        assert r["Content-Range"] == f"bytes */{len(WEIGHTS)}"
    assert DownloadEvent.objects.filter(outcome="denied").count() == 6


def test_a_denied_request_is_refused_with_its_rule_and_logged(lumi, checkpoint):
    r = authorize(lumi, checkpoint.digest, who="rec_fi")
    assert r.status_code == 403 and "balance ratio under 0.8" in r.json()["detail"]
    assert not Entry.objects.filter(kind="download.authorized").exists()
    assert DownloadEvent.objects.get().outcome == "denied"
    assert authorize(lumi, checkpoint.digest, who="obs_nl").status_code == 403
    assert authorize(lumi, checkpoint.digest, files=["../etc/passwd"]).status_code == 404


def test_a_token_is_good_only_for_its_member_its_files_and_its_time(lumi, checkpoint):
    body = authorize(lumi, checkpoint.digest).json()
    url = body["files"]["model.safetensors"]
    # Another member's delegate cannot use it.
    r = api_as(lumi["people"]["rec_fi"]).get(url)
    assert r.status_code == 403 and "another member" in r.json()["detail"]
    api = api_as(lumi["people"]["rec_se"])
    assert api.get(url.replace("model.safetensors", "../../settings.py")).status_code == 404
    tampered = body["token"][:-4] + ("AAAA" if body["token"][-4:] != "AAAA" else "BBBB")
    assert api.get(f"/api/v1/downloads/{tampered}/model.safetensors").status_code == 403
    assert api.get("/api/v1/downloads/not-a-token/model.safetensors").status_code == 400
    with time_machine.travel(datetime.now(UTC) + timedelta(hours=1)):
        r = api.get(url)
    assert r.status_code == 403 and "expired" in r.json()["detail"]


def test_a_suspension_takes_effect_at_once(lumi, checkpoint):
    url = authorize(lumi, checkpoint.digest).json()["files"]["model.safetensors"]
    people = lumi["people"]
    suspend_in_lumi(people, "SE")
    r = api_as(people["rec_se"]).get(url)
    assert r.status_code == 403 and "not a member in good standing" in r.json()["detail"]


def test_an_altered_stored_file_blocks_the_download(lumi, checkpoint):
    from django.core.files.storage import default_storage

    from consortium.access import checkpoints

    url = authorize(lumi, checkpoint.digest).json()["files"]["model.safetensors"]
    with default_storage.open(
        checkpoints.stored_path(checkpoint.digest, "model.safetensors"), "wb"
    ) as f:
        f.write(b"altered")
    checkpoints.checkpoints_verify()
    r = api_as(lumi["people"]["rec_se"]).get(url)
    assert r.status_code == 403 and "blocked" in r.json()["detail"]


@pytest.mark.parametrize("prefix", ["/_protected/checkpoints/"])
def test_nginx_serves_the_bytes_when_configured(lumi, checkpoint, settings, prefix):
    settings.DOWNLOADS_ACCEL_REDIRECT = prefix
    url = authorize(lumi, checkpoint.digest).json()["files"]["model.safetensors"]
    r = api_as(lumi["people"]["rec_se"]).get(url)
    assert (
        r.status_code == 200
        and r["X-Accel-Redirect"] == f"{prefix}{checkpoint.digest}/model.safetensors"
    )


def test_the_access_log_is_read_by_member_and_exported_for_auditors(lumi, checkpoint):
    url = authorize(lumi, checkpoint.digest).json()["files"]["model.safetensors"]
    api_as(lumi["people"]["rec_se"]).get(url)
    authorize(lumi, checkpoint.digest, who="rec_fi")  # denied
    se = api_as(lumi["people"]["rec_se"]).get("/api/v1/access/log").json()["results"]
    assert [(e["member"], e["outcome"]) for e in se] == [("SE", "served")]
    fi = api_as(lumi["people"]["sig_fi"]).get("/api/v1/access/log").json()["results"]
    assert [(e["member"], e["outcome"]) for e in fi] == [("FI", "denied")]
    csv = api_as(lumi["people"]["aud"]).get("/api/v1/access/log?output=csv")
    lines = b"".join(csv.streaming_content).decode().splitlines()
    assert lines[0].startswith("at,member,username") and len(lines) == 3
    assert api_as(lumi["people"]["aud"]).get("/api/v1/access/log?from=x").status_code == 400


def test_the_access_log_in_the_admin_is_scoped(client, lumi, checkpoint):
    authorize(lumi, checkpoint.digest, who="rec_fi")  # denied, logged for FI
    sign_in(client, lumi["people"]["rec_se"])
    assert (
        "balance ratio under" not in client.get("/admin/consortium/downloadevent/").content.decode()
    )
    sign_in(client, lumi["people"]["aud"])
    assert "balance ratio under" in client.get("/admin/consortium/downloadevent/").content.decode()


def test_the_checkpoints_access_page_explains_and_asks(client, lumi, checkpoint):
    page = f"/admin/consortium/modelcheckpoint/{checkpoint.digest}/access/"
    sign_in(client, lumi["people"]["rec_fi"])
    body = client.get(page).content.decode()
    assert "balance ratio under 0.8" in body and "<td>SE</td>" not in body
    assert "FI may not download it" in body and "FI may download it" in body  # inference
    assert " style=" not in body
    sign_in(client, lumi["people"]["rec_se"])
    issued = client.post(page, {"scope": "full_weights"}).content.decode()
    assert "Download authorised at entry" in issued and "/api/v1/downloads/" in issued
    assert "curl -fL -H 'Authorization: Bearer" in issued
    assert re.search(r"until \d{1,2} [A-Z][a-z]{2} \d{4}, \d{2}:\d{2} UTC", issued)
    assert Entry.objects.filter(kind="download.authorized").count() == 1


def test_asking_to_download_in_the_admin_needs_a_recent_second_factor(client, lumi, checkpoint):
    page = f"/admin/consortium/modelcheckpoint/{checkpoint.digest}/access/"
    sign_in(client, lumi["people"]["rec_se"], stepped_up=False)
    assert client.get(page).status_code == 200  # reading the decisions needs none
    response = client.post(page, {"scope": "full_weights"})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("stepup") + "?next=")
    assert not Entry.objects.filter(kind="download.authorized").exists()


def test_a_revoked_grant_stops_a_download_between_two_ranges(lumi, checkpoint):
    """NL is behind its share; a grant lets it evaluate. The grant is revoked while NL is
    fetching the file range by range: the next range is refused, and logged."""
    people = lumi["people"]

    def decide(actions, voters):
        p = proposals.proposal_open(
            actor=people["ops"],
            title="Access",
            actions=actions,
            deadline=datetime.now(UTC) + timedelta(minutes=5),
        )
        for who in voters:
            vote_cast(actor=people[who], proposal=p, choice="yes")
        decide_after_deadline(p)
        return p

    granted = decide(
        [
            {
                "type": "access.grant",
                "member": "NL",
                "scope": "evaluation",
                "checkpoints": [checkpoint.digest],
                "reason": "red-teaming",
            }
        ],
        ("sig_fi", "sig_se"),
    )
    grant = f"{granted.id}:0"
    r = authorize(lumi, checkpoint.digest, who="sig_nl", scope="evaluation")
    assert r.status_code == 201 and "access grant" in r.json()["rule"]
    url = r.json()["files"]["model.safetensors"]
    api = api_as(people["sig_nl"])
    first = api.get(url, HTTP_RANGE="bytes=0-999")
    assert first.status_code == 206 and streamed(first) == WEIGHTS[:1000]
    decide(
        [{"type": "access.revoke", "grant": grant, "reason": "evaluation finished"}],
        ("sig_fi", "sig_se"),
    )
    rest = api.get(url, HTTP_RANGE="bytes=1000-")
    assert rest.status_code == 403 and "denied now" in rest.json()["detail"]
    refused = DownloadEvent.objects.filter(member="NL", outcome="denied").get()
    assert refused.reason.startswith("denied now") and refused.path == "model.safetensors"


def test_tokens_from_another_key_or_with_spliced_claims_are_refused_and_logged(lumi, checkpoint):
    import base64
    import json

    from nacl.signing import SigningKey

    from ledger.services import canonical

    se = authorize(lumi, checkpoint.digest).json()["token"]
    api = api_as(lumi["people"]["rec_se"])
    payload, signature = se.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    # The same claims signed by a key that is not this log's (another ledger, a forger).
    forged_payload = canonical({**claims, "exp": claims["exp"] + 86400})
    other = SigningKey.generate().sign(downloads.TOKEN_CONTEXT + forged_payload).signature
    # Claims changed to last a day longer, with the genuine signature of the originals.
    spliced = f"{b64(forged_payload)}.{signature}"
    for token in (f"{b64(forged_payload)}.{b64(other)}", spliced):
        r = api.get(f"/api/v1/downloads/{token}/model.safetensors")
        assert r.status_code == 403 and "not signed by this log" in r.json()["detail"]
    assert (
        DownloadEvent.objects.filter(
            outcome="denied", reason__contains="not signed by this log"
        ).count()
        == 2
    )
    # Replaying the genuine token is allowed to its own member (a resumed download) and
    # to nobody else.
    assert api.get(f"/api/v1/downloads/{se}/model.safetensors").status_code == 200
    assert api.get(f"/api/v1/downloads/{se}/model.safetensors").status_code == 200
    other_member = api_as(lumi["people"]["sig_fi"]).get(f"/api/v1/downloads/{se}/model.safetensors")
    assert other_member.status_code == 403
    assert DownloadEvent.objects.filter(outcome="served").count() == 2


def test_odd_file_names_are_quoted_in_urls_and_headers(lumi, tmp_path, settings):
    """A stored name with a quote, a question mark or an accent is one file: its URL is
    percent-encoded, its Content-Disposition escaped, its nginx hand-over a URI."""
    from consortium.access import checkpoints

    treaty(lumi, access=[{"scope": "full_weights", "tier": "member"}])
    deliver(lumi)
    from consortium.governance.models import Agreement

    model = checkpoints.model_register(
        actor=None, code="odd", name="Odd", agreement=Agreement.objects.get()
    )
    (tmp_path / "w").mkdir()
    names = {'a"b?c.bin': b"first", "modèle.bin": b"second"}
    for name, data in names.items():
        (tmp_path / "w" / name).write_bytes(data)
    cp = checkpoints.checkpoint_publish(
        actor=None, model=model, name="odd", directory=tmp_path / "w", workers=1
    )
    urls = authorize(lumi, cp.digest).json()["files"]
    assert urls['a"b?c.bin'].endswith("/a%22b%3Fc.bin") and urls["modèle.bin"].endswith(
        "/mod%C3%A8le.bin"
    )
    api = api_as(lumi["people"]["rec_se"])
    got = api.get(urls['a"b?c.bin'])
    assert got.status_code == 200 and streamed(got) == b"first"
    assert got["Content-Disposition"] == 'attachment; filename="a\\"b?c.bin"'
    accented = api.get(urls["modèle.bin"])
    assert streamed(accented) == b"second"
    assert accented["Content-Disposition"] == "attachment; filename*=utf-8''mod%C3%A8le.bin"
    settings.DOWNLOADS_ACCEL_REDIRECT = "/protected/"
    handed = api.get(urls['a"b?c.bin'])
    assert handed["X-Accel-Redirect"].endswith("/a%22b%3Fc.bin")


@pytest.mark.django_db
def test_a_download_asked_of_a_log_without_a_key_is_refused_not_an_error(client, admin_client):
    # No ledger yet: no log key, so no download token can be valid.
    token = "A" * 40 + "." + "B" * 86
    anonymous = client.get(f"/api/v1/downloads/{token}/model.safetensors")
    assert anonymous.status_code in (401, 403)
    assert anonymous["Content-Type"].startswith("application/problem+json")
    signed_in = admin_client.get(f"/api/v1/downloads/{token}/model.safetensors")
    assert signed_in.status_code == 403
    assert signed_in["Content-Type"].startswith("application/problem+json")
    assert DownloadEvent.objects.filter(outcome="denied").count() == 2
