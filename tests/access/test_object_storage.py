"""Checkpoint files in an S3-compatible object store (django-storages), against a real S3
API over HTTP: moto's standalone server on a local port. Publishing puts the files in the
bucket, re-verification reads them back by streaming, downloads are streamed from ranged
reads or handed to the store with a presigned URL."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import urllib.request
import uuid

import boto3
import pytest
from django.core.exceptions import ImproperlyConfigured
from moto import server as moto_server

from consortium.access import checkpoints
from consortium.access.models import DownloadEvent
from consortium.web import storage
from tests.steps.access import WEIGHTS, authorize, streamed
from tests.steps.api import api_as

CREDENTIALS = {"access_key": "consortium-test", "secret_key": "consortium-test-secret"}


@pytest.fixture(scope="module")
def s3_endpoint():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def bucket(s3_endpoint, settings):
    """A fresh bucket, made the default storage for the test."""
    name = f"checkpoints-{uuid.uuid4().hex[:12]}"
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="eu-north-1",
        aws_access_key_id=CREDENTIALS["access_key"],
        aws_secret_access_key=CREDENTIALS["secret_key"],
    )
    client.create_bucket(
        Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-north-1"}
    )
    settings.STORAGES = {
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": name,
                "endpoint_url": s3_endpoint,
                "region_name": "eu-north-1",
                "location": "ledger",
                "default_acl": None,
                "file_overwrite": True,
                "addressing_style": "path",
                **CREDENTIALS,
            },
        },
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    return {"client": client, "name": name}


def _key(checkpoint):
    return f"ledger/{checkpoints.stored_path(checkpoint.digest, 'model.safetensors')}"


def test_publishing_puts_the_files_in_the_bucket(bucket, checkpoint):
    assert storage.is_object_store()
    stored = bucket["client"].get_object(Bucket=bucket["name"], Key=_key(checkpoint))
    assert stored["Body"].read() == WEIGHTS
    keys = {o["Key"] for o in bucket["client"].list_objects_v2(Bucket=bucket["name"])["Contents"]}
    assert any(k.startswith("ledger/agreements/") for k in keys)  # the treaty's document
    assert checkpoints.verify_stored(checkpoint) == []


def test_ranged_reads_stream_from_the_store(bucket, checkpoint):
    name = checkpoints.stored_path(checkpoint.digest, "model.safetensors")
    assert b"".join(storage.read_range(name)) == WEIGHTS
    assert b"".join(storage.read_range(name, 10, 10)) == WEIGHTS[10:20]
    assert b"".join(storage.read_range(name, len(WEIGHTS) - 3)) == WEIGHTS[-3:]
    assert b"".join(storage.read_range(name, 5, 0)) == b""


def test_downloads_are_streamed_from_the_store(lumi, bucket, checkpoint):
    url = authorize(lumi, checkpoint.digest).json()["files"]["model.safetensors"]
    api = api_as(lumi["people"]["rec_se"])
    whole = api.get(url)
    assert whole.status_code == 200 and streamed(whole) == WEIGHTS
    assert whole["Content-Length"] == str(len(WEIGHTS))
    part = api.get(url, HTTP_RANGE="bytes=100-199")
    assert part.status_code == 206 and streamed(part) == WEIGHTS[100:200]
    assert part["Content-Range"] == f"bytes 100-199/{len(WEIGHTS)}"
    tail = api.get(url, HTTP_RANGE="bytes=-7")
    assert streamed(tail) == WEIGHTS[-7:]
    assert api.get(url, HTTP_RANGE=f"bytes={len(WEIGHTS)}-").status_code == 416


def test_an_object_altered_in_the_store_blocks_the_checkpoint(lumi, bucket, checkpoint):
    url = authorize(lumi, checkpoint.digest).json()["files"]["model.safetensors"]
    bucket["client"].put_object(Bucket=bucket["name"], Key=_key(checkpoint), Body=b"altered")
    assert checkpoints.verify_stored(checkpoint) == ["model.safetensors: stored bytes do not match"]
    checkpoints.checkpoints_verify()
    r = api_as(lumi["people"]["rec_se"]).get(url)
    assert r.status_code == 403 and "blocked" in r.json()["detail"]


def test_a_removed_object_is_named(bucket, checkpoint):
    bucket["client"].delete_object(Bucket=bucket["name"], Key=_key(checkpoint))
    assert checkpoints.verify_stored(checkpoint) == ["model.safetensors: missing"]


def test_a_presigned_redirect_hands_the_bytes_to_the_store(lumi, bucket, checkpoint, settings):
    settings.DOWNLOAD_PRESIGNED_REDIRECT = True
    settings.DOWNLOAD_PRESIGNED_SECONDS = 30
    url = authorize(lumi, checkpoint.digest).json()["files"]["model.safetensors"]
    r = api_as(lumi["people"]["rec_se"]).get(url)
    assert r.status_code == 302 and r["Cache-Control"] == "no-store"
    location = r["Location"]
    assert "X-Amz-Expires=30" in location and "X-Amz-Signature=" in location
    with urllib.request.urlopen(location) as got:  # noqa: S310 (the local test server)
        assert got.read() == WEIGHTS
        assert 'filename="model.safetensors"' in got.headers["Content-Disposition"]
    ranged = urllib.request.Request(location, headers={"Range": "bytes=0-6"})  # noqa: S310
    with urllib.request.urlopen(ranged) as got:  # noqa: S310
        assert got.status == 206 and got.read() == WEIGHTS[:7]
    assert DownloadEvent.objects.filter(outcome="served", member="SE").count() == 1
    # The gate still stands in front of the redirect: another member's delegate is refused.
    other = api_as(lumi["people"]["rec_fi"]).get(url)
    assert other.status_code == 403 and "Location" not in other


def test_the_checksum_of_the_bucket_copy_is_the_manifests(bucket, checkpoint):
    body = bucket["client"].get_object(Bucket=bucket["name"], Key=_key(checkpoint))["Body"]
    assert hashlib.sha256(body.read()).hexdigest() == checkpoint.files[0]["sha256"]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DOWNLOAD_PRESIGNED_REDIRECT": "1"}, "DOWNLOAD_PRESIGNED_REDIRECT needs S3_BUCKET"),
        (
            {
                "DOWNLOAD_PRESIGNED_REDIRECT": "1",
                "S3_BUCKET": "b",
                "DOWNLOAD_ACCEL_REDIRECT": "/p/",
            },
            "choose DOWNLOAD_PRESIGNED_REDIRECT or DOWNLOADS_ACCEL_REDIRECT",
        ),
        (
            {"DOWNLOADS_ACCEL_REDIRECT": "_protected/checkpoints"},
            "DOWNLOADS_ACCEL_REDIRECT is a URL path that starts and ends with /",
        ),
    ],
)
def test_contradictory_download_settings_are_refused_at_start(env, message):
    code = "import django; django.setup()"
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("S3_", "DOWNLOAD_", "DOWNLOADS_"))
    }
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, **env, "DEBUG": "1", "DJANGO_SETTINGS_MODULE": "consortium.settings"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0
    assert ImproperlyConfigured.__name__ in done.stderr and message in done.stderr


def test_an_audit_export_is_stored_in_the_bucket_and_streamed_from_it(lumi, bucket, checkpoint):
    from django.http import FileResponse, StreamingHttpResponse

    from consortium.audit import exports as audit

    export = audit.audit_export_request(actor=lumi["people"]["aud"])
    audit.audit_export_build(export.id)
    export.refresh_from_db()
    key = f"ledger/{export.file.name}"
    head = bucket["client"].head_object(Bucket=bucket["name"], Key=key)
    assert head["ContentLength"] == export.size
    got = api_as(lumi["people"]["aud"]).get(f"/api/v1/audit/exports/{export.id}/file")
    # Streamed a buffer at a time, not downloaded whole before the first byte.
    assert isinstance(got, StreamingHttpResponse) and not isinstance(got, FileResponse)
    assert got["Content-Length"] == str(export.size)
    assert hashlib.sha256(streamed(got)).hexdigest() == export.bundle_sha256
