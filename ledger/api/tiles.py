"""The log as C2SP tlog-tiles, under the prefix ``/api/v1/ledger/tlog``: the checkpoint,
the tiles of the tree and the bundles of entries (``ledger.tiles``).

Readable by whoever may read the ledger (the same token as the rest of its API); tiles
are immutable and say so in their caching headers, the checkpoint is not."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, renderers
from rest_framework.request import Request
from rest_framework.views import APIView

from ledger import tiles
from ledger.api import caching
from ledger.api.serializers import ProblemSerializer
from ledger.api.views import PROBLEMS, CheckpointView
from ledger.core.tiles import ENTRIES, TileError, parse_tile_path
from ledger.reads import reads_from_replica
from ledger.tile_storage import TILE_CACHE

# Tiles never change; they are read with a token, so only the client may keep them.
IMMUTABLE = TILE_CACHE


class OctetRenderer(renderers.BaseRenderer):
    """Tiles and bundles as bytes; problems (dicts) as JSON."""

    media_type = "application/octet-stream"
    format = "bin"
    charset = None

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if isinstance(data, bytes):
            return data
        return renderers.JSONRenderer().render(data)


class Unbundlable(exceptions.APIException):
    """An entry bundle that would hold a leaf over 65,535 bytes: appends refuse such a leaf,
    but a log that took envelopes of up to 256 KiB before may hold one, and its bundle
    cannot be written in the spec's format."""

    status_code = 409


class TlogCheckpointView(CheckpointView):
    """``<prefix>/checkpoint``: the latest signed checkpoint, as the ledger API serves it."""

    @extend_schema(
        operation_id="ledger_tlog_checkpoint",
        summary="The latest signed checkpoint (C2SP tlog-tiles)",
        responses={
            (200, "text/plain"): OpenApiResponse(OpenApiTypes.STR, description="The signed note."),
            401: PROBLEMS[401],
            404: PROBLEMS[404],
        },
    )
    def get(self, request: Request) -> HttpResponse:
        return super().get(request)


class TileView(APIView):
    """``<prefix>/tile/<L>/<N>[.p/<W>]`` and ``<prefix>/tile/entries/<N>[.p/<W>]``."""

    renderer_classes = [OctetRenderer, renderers.JSONRenderer]

    @extend_schema(
        operation_id="ledger_tlog_tile",
        summary="A tile of the tree, or a bundle of entries (C2SP tlog-tiles)",
        description=(
            "A tile: 256 hashes (or W, for a partial tile) at level L, index N (in "
            "3-digit path elements, all but the last prefixed with x). An entry bundle: "
            "the leaves, each prefixed by its length as a big-endian uint16. Only what the "
            "latest checkpoint covers is served; tiles never change."
        ),
        responses={
            (200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY),
            401: PROBLEMS[401],
            404: PROBLEMS[404],
        },
    )
    @reads_from_replica
    def get(self, request: Request, path: str) -> HttpResponse:
        try:
            level, n, width = parse_tile_path(f"tile/{path}")
        except TileError as exc:
            raise exceptions.NotFound(str(exc)) from exc
        try:
            body = tiles.entry_bundle(n, width) if level == ENTRIES else tiles.tile(level, n, width)
        except tiles.NoSuchTile as exc:
            raise exceptions.NotFound(str(exc)) from exc
        except TileError as exc:
            raise Unbundlable(str(exc)) from exc
        response = HttpResponse(body, content_type="application/octet-stream")
        # A partial tile of width W is as fixed as a full one (its W hashes never change).
        return caching.conditional(request, response, caching.etag(body), IMMUTABLE)


class ReaderView(APIView):
    """``GET /api/v1/ledger/reader``: 204 if the caller may read the ledger, the API's
    401 or 403 otherwise. What nginx asks (``auth_request``) before it serves a tile from
    disk (``deploy/nginx/tiles.conf``): the same rule as every ledger endpoint, without
    reading anything of the log."""

    @extend_schema(
        operation_id="ledger_reader",
        summary="May the caller read the ledger (for a proxy's auth_request)",
        responses={
            204: OpenApiResponse(
                description="Yes: the tiles, entries and proofs are yours to read."
            ),
            401: PROBLEMS[401],
            403: OpenApiResponse(ProblemSerializer, description="Not allowed (problem+json)."),
        },
    )
    def get(self, request: Request) -> HttpResponse:
        response = HttpResponse(status=204)
        response["Cache-Control"] = "private, no-store"
        return response
