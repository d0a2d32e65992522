"""How the bytes of a checked download leave: a bounded slice of a local file that the
app server can send with sendfile(2), or a hand-over to nginx (X-Accel-Redirect).

``FileSlice`` reads at most ``length`` bytes from ``first``, so a server without a file
wrapper (runserver, the test client) streams exactly the range through
``FileResponse``; it also shows its file descriptor, positioned at ``first``, so
gunicorn's ``wsgi.file_wrapper`` sends the response's Content-Length bytes from there with
sendfile(2), without any byte passing through Python.
"""

from __future__ import annotations

from urllib.parse import quote

from django.conf import settings
from django.core.files.storage import default_storage

from consortium.access.downloads import Serving
from consortium.web import storage


class FileSlice:
    """Bytes ``first .. first+length`` of the local file at ``path``, as a file object."""

    def __init__(self, path: str, first: int, length: int):
        self._file = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by the response
        self._file.seek(first)
        self._left = length

    def read(self, size: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        size = self._left if size is None or size < 0 else min(size, self._left)
        data = self._file.read(size)
        self._left -= len(data)
        return data

    def fileno(self) -> int:
        return self._file.fileno()

    def close(self) -> None:
        self._file.close()


def local_slice(serving: Serving) -> FileSlice | None:
    """The served bytes as a :class:`FileSlice`, when the file is on a local filesystem."""
    if storage.is_object_store():
        return None
    try:
        path = default_storage.path(serving.stored)
    except NotImplementedError:  # a storage without local paths
        return None
    return FileSlice(path, serving.first, serving.length)


def accel_redirect(serving: Serving) -> str | None:
    """The X-Accel-Redirect URI that hands ``serving`` to nginx, if configured: the
    DOWNLOADS_ACCEL_REDIRECT location + the file's path under the checkpoints' root,
    percent-encoded (nginx decodes it, so a name holding "?" or "%" stays one file).
    Local storage only: nginx reads the files from disk."""
    prefix = settings.DOWNLOADS_ACCEL_REDIRECT
    if not prefix or storage.is_object_store():
        return None
    return prefix + quote(f"{serving.checkpoint}/{serving.path}", safe="/")
