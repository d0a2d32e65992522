"""Downloads handed to a real nginx with X-Accel-Redirect (deploy/nginx/downloads.conf)
in front of the application under gunicorn: the application checks every request and
keeps its access-log line, nginx sends the bytes (whole, or the Range) from disk; a
refusal is the application's problem+json with none of the file's bytes, and the
internal location cannot be reached from outside.

nginx must be installed (apt-get install -y nginx-light): without it these tests fail,
saying so."""

from __future__ import annotations

import hashlib
import shutil
import urllib.error
import urllib.request

import pytest

from consortium.access.models import DownloadEvent
from consortium.governance.models import ApiToken
from tests import personas
from tests.steps.access import WEIGHTS
from tests.steps.api import api_as
from tests.steps.downloads_nginx import PREFIX, downloads_nginx
from tests.steps.ledger import child_env, wipe_database
from tests.steps.nginx import app_server, readable_dir


def _get(url: str, token: str | None = None, **headers) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - a local server
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as r:  # noqa: S310 - a local server
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


@pytest.fixture(scope="module")
def served(django_db_setup, django_db_blocker):
    """LUMI's checkpoint stored under a media directory nginx reads; Sweden's download
    authorised; the application under gunicorn with DOWNLOADS_ACCEL_REDIRECT, nginx in
    front of it."""
    from django.test import override_settings

    media, work = readable_dir("consortium-media-"), readable_dir("consortium-work-")
    with override_settings(MEDIA_ROOT=str(media)), django_db_blocker.unblock():
        wipe_database()
        try:
            lumi = personas.found_lumi()
            checkpoint = personas.publish(lumi, work)
            people = lumi["people"]
            body = (
                api_as(people["rec_se"])
                .post(f"/api/v1/checkpoints/{checkpoint.digest}/downloads", {}, format="json")
                .json()
            )
            tokens = {
                who: ApiToken.issue(user=people[who], days=1)[1] for who in ("rec_se", "rec_fi")
            }
            env = {
                **child_env(),
                "ALLOWED_HOSTS": "127.0.0.1",
                "DEBUG": "0",
                "MEDIA_ROOT": str(media),
                "DOWNLOADS_ACCEL_REDIRECT": PREFIX,
            }
            env.pop("DOWNLOAD_ACCEL_REDIRECT", None)
            with app_server(env) as app_port, downloads_nginx(media, app_port) as base:
                yield {
                    "base": base,
                    "app": f"http://127.0.0.1:{app_port}",
                    "url": body["files"]["model.safetensors"],
                    "digest": checkpoint.digest,
                    "tokens": tokens,
                }
        finally:
            wipe_database()
            shutil.rmtree(media, ignore_errors=True)
            shutil.rmtree(work, ignore_errors=True)


def last_line(django_db_blocker) -> DownloadEvent:
    with django_db_blocker.unblock():
        return DownloadEvent.objects.order_by("-id").first()


def test_nginx_sends_the_whole_file_the_application_allowed(served, django_db_blocker):
    status, headers, body = _get(served["base"] + served["url"], served["tokens"]["rec_se"])
    assert status == 200 and body == WEIGHTS
    assert headers["etag"] == f'"{hashlib.sha256(WEIGHTS).hexdigest()}"'
    assert headers["content-type"] == "application/octet-stream"
    assert headers["content-disposition"] == 'attachment; filename="model.safetensors"'
    assert headers["cache-control"] == "private, no-store"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["accept-ranges"] == "bytes" and "x-accel-redirect" not in headers
    line = last_line(django_db_blocker)
    assert (line.member, line.username, line.outcome) == ("SE", "rec_se", "served")
    assert (line.reason, line.bytes_served) == ("full_weights", len(WEIGHTS))


def test_nginx_answers_the_range_and_the_access_log_names_it(served, django_db_blocker):
    token = served["tokens"]["rec_se"]
    status, headers, body = _get(served["base"] + served["url"], token, Range="bytes=10-4009")
    assert status == 206 and body == WEIGHTS[10:4010]
    assert headers["content-range"] == f"bytes 10-4009/{len(WEIGHTS)}"
    assert headers["etag"] == f'"{hashlib.sha256(WEIGHTS).hexdigest()}"'
    line = last_line(django_db_blocker)
    assert (line.outcome, line.reason, line.bytes_served) == (
        "served",
        "full_weights; bytes 10-4009",
        4000,
    )
    status, _, body = _get(served["base"] + served["url"], token, Range="bytes=-7")
    assert status == 206 and body == WEIGHTS[-7:]
    # If-Range with the file's ETag: the range; with another: the whole file.
    etag = headers["etag"]
    status, _, body = _get(
        served["base"] + served["url"], token, Range="bytes=0-4", **{"If-Range": etag}
    )
    assert status == 206 and body == WEIGHTS[:5]
    status, _, body = _get(
        served["base"] + served["url"], token, Range="bytes=0-4", **{"If-Range": '"other"'}
    )
    assert status == 200 and body == WEIGHTS


def test_a_range_past_the_end_is_nginxs_416_and_in_the_access_log(served, django_db_blocker):
    status, headers, body = _get(
        served["base"] + served["url"], served["tokens"]["rec_se"], Range="bytes=90000-"
    )
    assert status == 416 and WEIGHTS[:20] not in body
    assert headers["content-range"] == f"bytes */{len(WEIGHTS)}"
    line = last_line(django_db_blocker)
    assert line.outcome == "served" and "'bytes=90000-' left to the web server" in line.reason


def test_a_refused_request_is_the_applications_403_without_a_byte(served, django_db_blocker):
    status, headers, body = _get(served["base"] + served["url"], served["tokens"]["rec_fi"])
    assert status == 403 and headers["content-type"] == "application/problem+json"
    assert b"another member" in body and b"weights" not in body
    assert "x-accel-redirect" not in headers
    line = last_line(django_db_blocker)
    assert (line.member, line.username, line.outcome) == ("SE", "rec_fi", "denied")
    status, headers, body = _get(served["base"] + served["url"])
    assert status == 401 and b"weights" not in body


def test_the_internal_location_is_not_reachable_from_outside(served):
    direct = f"{served['base']}{PREFIX}{served['digest']}/model.safetensors"
    for token in (None, served["tokens"]["rec_se"]):
        status, _, body = _get(direct, token)
        assert status == 404 and b"weights" not in body


def test_the_application_alone_answers_with_the_hand_over_and_no_bytes(served):
    status, headers, body = _get(served["app"] + served["url"], served["tokens"]["rec_se"])
    assert status == 200 and body == b""
    assert headers["x-accel-redirect"] == f"{PREFIX}{served['digest']}/model.safetensors"
