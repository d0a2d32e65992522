"""Where the tiles are written: the ``tiles`` storage of ``settings.STORAGES``.

Two backends of Django's storage API, chosen in settings (``TILES_ROOT``, or the
``S3_BUCKET`` under ``<S3_PREFIX>/tlog``):

- :class:`TileFileStorage`: a directory that nginx serves (``deploy/nginx/tiles.conf``).
  Each file is written to a temporary name beside it and renamed into place, so a
  reader never sees half a file, and the ``checkpoint`` file can be replaced.
- :class:`TileS3Storage`: a bucket behind a CDN; each object carries the content type and
  the caching headers of C2SP tlog-tiles, as the view and nginx send them.
"""

from __future__ import annotations

import os
import tempfile

from django.core.files.storage import FileSystemStorage
from storages.backends.s3 import S3Storage

CHECKPOINT = "checkpoint"
TILE_TYPE = "application/octet-stream"
CHECKPOINT_TYPE = "text/plain; charset=utf-8"
# Tiles never change; the checkpoint does, so it is always revalidated. Tiles hold every
# entry and are read with a token (the audience of the entries API): only the client may
# keep them. (A CDN that checks access at its edge may be told otherwise there.)
TILE_CACHE = "private, max-age=31536000, immutable"
CHECKPOINT_CACHE = "no-cache"


def headers_for(name: str) -> tuple[str, str]:
    """``(Content-Type, Cache-Control)`` of a stored file, by its name."""
    if name == CHECKPOINT or name.endswith("/" + CHECKPOINT):
        return CHECKPOINT_TYPE, CHECKPOINT_CACHE
    return TILE_TYPE, TILE_CACHE


def _makedirs(directory: str) -> None:
    """Make ``directory`` and its missing parents readable by all (0755, whatever the
    umask): nginx reads the tiles as another user than the one that writes them."""
    missing = []
    while not os.path.isdir(directory):
        missing.append(directory)
        directory = os.path.dirname(directory)
    for path in reversed(missing):
        try:
            os.mkdir(path)
        except FileExistsError:
            continue
        os.chmod(path, 0o755)  # noqa: S103 - served to all by design


class TileFileStorage(FileSystemStorage):
    """A directory of tiles: every write lands whole (temporary file, fsync, rename), and
    a name that exists is replaced, not renamed aside. Files are 0644 and directories
    0755: nginx reads them as another user."""

    def get_available_name(self, name, max_length=None):
        return name

    def _save(self, name, content):
        full = self.path(name)
        directory = os.path.dirname(full)
        _makedirs(directory)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                for chunk in content.chunks():
                    handle.write(chunk)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, full)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return name


class TileS3Storage(S3Storage):
    """A bucket of tiles: objects carry the spec's content type and caching headers."""

    def get_object_parameters(self, name):
        params = dict(super().get_object_parameters(name))
        content_type, cache = headers_for(name)
        params.setdefault("ContentType", content_type)
        params.setdefault("CacheControl", cache)
        return params
