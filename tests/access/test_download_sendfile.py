"""A bounded range of a local file is handed to the app server's file wrapper (gunicorn's
sends it with sendfile(2)): a descriptor positioned at the range's first byte and a
Content-Length of the range, no byte read by Python on the way."""

from __future__ import annotations

import os

from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import RequestFactory

from consortium.access.sending import FileSlice
from consortium.governance.models import ApiToken
from tests.steps.access import WEIGHTS, authorize


class FileWrapper:
    """What a WSGI server's ``wsgi.file_wrapper`` receives."""

    def __init__(self, filelike, block_size=8192):
        self.filelike = filelike

    def __iter__(self):
        return iter(lambda: self.filelike.read(8192), b"")

    def close(self):
        self.filelike.close()


def test_a_bounded_range_reaches_the_servers_file_wrapper_as_a_positioned_slice(lumi, checkpoint):
    url = authorize(lumi, checkpoint.digest).json()["files"]["model.safetensors"]
    _, bearer = ApiToken.issue(user=lumi["people"]["rec_se"], days=1)
    environ = (
        RequestFactory()
        .get(url, HTTP_AUTHORIZATION=f"Bearer {bearer}", HTTP_RANGE="bytes=100-4099")
        .environ
    )
    environ["wsgi.file_wrapper"] = FileWrapper
    answer = {}

    def start_response(status, headers):
        answer.update(status=status, headers=dict(headers))

    # As Django's test client does: the test's database connection outlives the request.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    body = WSGIHandler()(environ, start_response)
    try:
        assert answer["status"].startswith("206")
        assert answer["headers"]["Content-Length"] == "4000"
        assert answer["headers"]["Content-Range"] == f"bytes 100-4099/{len(WEIGHTS)}"
        assert isinstance(body, FileWrapper) and isinstance(body.filelike, FileSlice)
        # What sendfile(2) starts from: the descriptor's own position.
        assert os.lseek(body.filelike.fileno(), 0, os.SEEK_CUR) == 100
        assert b"".join(body) == WEIGHTS[100:4100]
    finally:
        body.close()
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
