"""The ledger's side of the lean path of proofs (consortium.leanreads): an inclusion or
consistency proof made from a request's query when the query is exactly the endpoint's
parameters, each once, written as plain decimal numbers in range (``0``, or digits
without a leading zero), in a valid order, and the tree has reached the size asked; and
its answer, with the body, ETag and Cache-Control the full way's view gives. Anything
else is None: the full way answers it.
"""

from __future__ import annotations

import base64
import json
import re

from django.http import HttpResponse

from ledger import proofs
from ledger.api import caching
from ledger.core.envelope import MAX_SAFE_INTEGER
from ledger.reads import reads_from_replica

_NUMBER = re.compile(r"0|[1-9][0-9]{0,15}")


def _number(values: list[str], smallest: int) -> int | None:
    """The one value of a query parameter, a plain decimal in [smallest, 2**53 - 1]."""
    if len(values) != 1 or not _NUMBER.fullmatch(values[0]):
        return None
    n = int(values[0])
    return n if smallest <= n <= MAX_SAFE_INTEGER else None


def _b64(h: bytes) -> str:
    return base64.b64encode(h).decode()


def _pair(request, first: tuple[str, int], second: tuple[str, int]) -> tuple[int, int] | None:
    """The query's two parameters (name, smallest value), and no other, or None."""
    query = request.GET
    if len(query) != 2:
        return None
    a = _number(query.getlist(first[0]), first[1])
    b = _number(query.getlist(second[0]), second[1])
    return None if a is None or b is None else (a, b)


def _made(size: int, make) -> list[bytes] | None:
    """The proof ``make()`` reads from the tree of ``size``, or None past the tree."""
    try:
        return proofs.within(size, make)
    except proofs.BeyondTree:
        return None


def inclusion(request) -> tuple[dict, str, list[bytes]] | None:
    """An inclusion proof's answer (data, ETag prefix, proof), or None for the full way."""
    pair = _pair(request, ("index", 0), ("tree_size", 1))
    if pair is None or pair[0] >= pair[1]:
        return None
    index, size = pair
    if (proof := _made(size, lambda: proofs.inclusion_proof(index, size))) is None:
        return None
    data = {"index": index, "tree_size": size, "proof": [_b64(h) for h in proof]}
    return data, f"inclusion/{index}/{size}/", proof


def consistency(request) -> tuple[dict, str, list[bytes]] | None:
    """A consistency proof's answer (data, ETag prefix, proof), or None for the full way."""
    pair = _pair(request, ("from", 1), ("to", 1))
    if pair is None or pair[0] > pair[1]:
        return None
    old, new = pair
    if (proof := _made(new, lambda: proofs.consistency_proof(old, new))) is None:
        return None
    data = {"from": old, "to": new, "proof": [_b64(h) for h in proof]}
    return data, f"consistency/{old}/{new}/", proof


# The middleware after this one whose hooks add headers to an answer, in the order of


class _Reads:
    """Reads that may go to a replica, as the full way's views make them."""

    @reads_from_replica
    def made(self, request, make):
        return make(request)


_READS = _Reads()


def answer(request, make) -> HttpResponse | None:
    """``make`` (``inclusion`` or ``consistency``) answered as the full way's view
    answers it, 304 included (REST framework's JSONRenderer: compact, and every value
    here is ASCII), or None."""
    made = _READS.made(request, make)
    if made is None:
        return None
    data, tag_prefix, proof = made
    response = HttpResponse(
        json.dumps(data, separators=(",", ":")).encode(), content_type="application/json"
    )
    tag = caching.etag(tag_prefix.encode() + b"".join(proof))
    return caching.conditional(request, response, tag, caching.IMMUTABLE)
