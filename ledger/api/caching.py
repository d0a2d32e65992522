"""Validators and caching headers of the ledger's read answers (docs/scaling.md).

Every reader gets the same bytes for the same URL, but only readers may have them: what
is kept is ``private`` (no shared cache outside the operator's own, which checks access
first: deploy/nginx/ledger-reads.conf; a shared cache never keeps an answer to a request
with Authorization unless told it may). Proofs for an explicit tree size never change and
say so; the checkpoint changes with each new one, so it is revalidated on every use,
which its ETag makes a 304 of while it has not changed."""

from __future__ import annotations

import hashlib
import re

from django.http import HttpResponse, HttpResponseNotModified

from ledger.reads import ReplicaBehind, replica_alias

IMMUTABLE = "private, max-age=31536000, immutable"
REVALIDATE = "no-cache"

# The checkpoint's ETag: its tree size, then a digest of the body (which holds the
# cosignatures, so a new cosignature is a new ETag at the same size).
_SIZED = re.compile(r'"(\d+)-[0-9a-f]+"')


def etag(body: bytes, size: int | None = None) -> str:
    digest = hashlib.sha256(body).hexdigest()[:32]
    return f'"{digest}"' if size is None else f'"{size}-{digest}"'


def _matches(header: str, tag: str) -> bool:
    if header.strip() == "*":
        return True
    return tag in (t.strip().removeprefix("W/") for t in header.split(","))


def refuse_older(request, size: int) -> None:
    """On a replica, an ``If-None-Match`` naming a checkpoint larger than ``size``: the
    client has seen more than this replica holds, so the primary answers instead."""
    header = request.headers.get("If-None-Match", "")
    if replica_alias() is None or not header:
        return
    if any(int(seen) > size for seen in _SIZED.findall(header)):
        raise ReplicaBehind(f"the client has seen a checkpoint larger than {size}")


def conditional(request, response: HttpResponse, tag: str, cache_control: str) -> HttpResponse:
    """``response`` with its ETag and Cache-Control, or a 304 with them (and the other
    headers a cache must update) when the client's ``If-None-Match`` names it."""
    response["ETag"] = tag
    response["Cache-Control"] = cache_control
    header = request.headers.get("If-None-Match")
    if header and request.method in ("GET", "HEAD") and _matches(header, tag):
        not_modified = HttpResponseNotModified()
        for name in ("ETag", "Cache-Control", "Witness-Policy", "Content-Disposition"):
            if name in response:
                not_modified[name] = response[name]
        return not_modified
    return response
