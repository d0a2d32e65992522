"""Reading stored files through Django's storage API, in constant memory, whatever the
backend: the local filesystem (the default) or an S3-compatible object store
(django-storages, configured with ``S3_BUCKET``; see the README).

Django's ``File`` interface is enough to write and to check existence, but reading a
range of a large object through it would download the whole object first (django-storages
spools an ``S3File`` into a temporary file). So ranges are read here: from an object store
with a ranged ``GetObject`` streamed a buffer at a time, from anything else by seeking.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.core.files.storage import Storage, default_storage
from django.http import FileResponse, StreamingHttpResponse
from django.utils.http import content_disposition_header

CHUNK = 1 << 20


def is_object_store(storage: Storage | None = None) -> bool:
    """Whether ``storage`` is an S3-compatible bucket (it has a boto3 bucket)."""
    storage = storage or default_storage
    return hasattr(storage, "bucket_name") and hasattr(storage, "connection")


def _object_key(storage: Storage, name: str) -> str:
    from storages.utils import clean_name

    return storage._normalize_name(clean_name(name))


def read_range(
    name: str, first: int = 0, length: int | None = None, storage: Storage | None = None
) -> Iterator[bytes]:
    """The bytes ``first .. first+length`` (to the end when ``length`` is ``None``) of a
    stored file, a buffer at a time. The file is opened when iteration starts and closed
    when it ends or is abandoned."""
    storage = storage or default_storage
    if length == 0:
        return
    if is_object_store(storage):
        ask = {"Range": f"bytes={first}-{'' if length is None else first + length - 1}"}
        if first == 0 and length is None:
            ask = {}
        body = storage.connection.meta.client.get_object(
            Bucket=storage.bucket_name, Key=_object_key(storage, name), **ask
        )["Body"]
        try:
            yield from body.iter_chunks(CHUNK)
        finally:
            body.close()
        return
    handle = storage.open(name, "rb")
    try:
        if first:
            handle.seek(first)
        left = length
        while left is None or left > 0:
            chunk = handle.read(CHUNK if left is None else min(CHUNK, left))
            if not chunk:
                break
            if left is not None:
                left -= len(chunk)
            yield chunk
    finally:
        handle.close()


def presigned_url(name: str, *, seconds: int, filename: str, storage: Storage | None = None) -> str:
    """A URL of the object store that serves ``name`` (Range included) to whoever holds
    it for ``seconds``, as an attachment called ``filename``."""
    storage = storage or default_storage
    if not is_object_store(storage):
        raise ValueError("presigned URLs need an S3-compatible object store (S3_BUCKET)")
    return storage.connection.meta.client.generate_presigned_url(
        "get_object",
        Params={
            "Bucket": storage.bucket_name,
            "Key": _object_key(storage, name),
            "ResponseContentDisposition": content_disposition_header(True, filename),
            "ResponseContentType": "application/octet-stream",
        },
        ExpiresIn=seconds,
    )


def attachment(name: str, *, filename: str, content_type: str, size: int):
    """A response that sends a whole stored file as an attachment, in constant memory:
    the server's file wrapper for a local file, a streamed read from an object store
    (opening it as a Django ``File`` would download all of it first)."""
    if is_object_store():
        response = StreamingHttpResponse(read_range(name), content_type=content_type)
        response["Content-Length"] = str(size)
    else:
        response = FileResponse(default_storage.open(name, "rb"), content_type=content_type)
    response["Content-Disposition"] = content_disposition_header(True, filename)
    return response
