"""Range headers from outside: a position longer than Python's int() will read (4,300
digits) is a 416 problem, or the rest of the file, never a 500."""

from __future__ import annotations

from rest_framework.test import APIClient

from consortium.access.models import DownloadEvent
from tests import worlds
from tests.steps.access import WEIGHTS
from tests.steps.api import api_as

# Every test here starts from the same world: built once for the module (tests/worlds.py).
lumi = worlds.shared("lumi", world="published")
checkpoint = worlds.shared("checkpoint", world="published")


def _url(lumi, digest) -> tuple[APIClient, str]:
    api = api_as(lumi["people"]["rec_se"], raise_request_exception=False)
    body = api.post(f"/api/v1/checkpoints/{digest}/downloads", {}, format="json").json()
    return api, body["files"]["model.safetensors"]


def test_a_range_starting_past_any_file_is_a_416(lumi, checkpoint):
    api, url = _url(lumi, checkpoint.digest)
    huge = "9" * 5000
    for header in (f"bytes={huge}-", f"bytes={huge}-{huge}", f"bytes=1{'0' * 18}-"):
        r = api.get(url, HTTP_RANGE=header)
        assert r.status_code == 416 and r["Content-Type"] == "application/problem+json"
        assert r["Content-Range"] == f"bytes */{len(WEIGHTS)}"
        assert "past the file's" in r.json()["detail"]
    assert DownloadEvent.objects.filter(outcome="denied").count() == 3


def test_a_range_ending_past_any_file_is_the_rest_of_it(lumi, checkpoint):
    api, url = _url(lumi, checkpoint.digest)
    huge = "9" * 5000
    tail = api.get(url, HTTP_RANGE=f"bytes=10-{huge}")
    assert tail.status_code == 206
    assert b"".join(tail.streaming_content) == WEIGHTS[10:]
    whole = api.get(url, HTTP_RANGE=f"bytes=-{huge}")
    assert whole.status_code == 206 and b"".join(whole.streaming_content) == WEIGHTS
    padded = api.get(url, HTTP_RANGE=f"bytes={'0' * 5000}5-{'0' * 5000}9")
    assert padded.status_code == 206 and b"".join(padded.streaming_content) == WEIGHTS[5:10]
