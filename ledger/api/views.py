"""Read-only ledger endpoints: checkpoint, entries, proofs, keys."""

from __future__ import annotations

import base64
from urllib.parse import urlencode

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, renderers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ledger import log, submissions
from ledger.api import serializers as s
from ledger.models import Entry, Key

PROBLEMS = {
    400: OpenApiResponse(s.ProblemSerializer, description="Bad parameters (problem+json)."),
    401: OpenApiResponse(s.ProblemSerializer, description="Not authenticated (problem+json)."),
    404: OpenApiResponse(s.ProblemSerializer, description="Not found (problem+json)."),
}


class Refusal(exceptions.APIException):
    """A refused submission, answered with the status its refusal names (400, 403, 409,
    413); the project's exception handler renders it as problem+json."""

    def __init__(self, refused: submissions.Refused):
        self.status_code = refused.status
        super().__init__(str(refused))


def _b64(h: bytes) -> str:
    return base64.b64encode(h).decode()


def _query(serializer_class, request: Request) -> dict:
    ser = serializer_class(data=request.query_params)
    ser.is_valid(raise_exception=True)
    return ser.validated_data


class NoteRenderer(renderers.BaseRenderer):
    """The signed note as text/plain; problems (dicts) as JSON."""

    media_type = "text/plain"
    format = "txt"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if isinstance(data, str):
            return data.encode()
        return renderers.JSONRenderer().render(data)


class CheckpointView(APIView):
    renderer_classes = [NoteRenderer, renderers.JSONRenderer]

    @extend_schema(
        operation_id="ledger_checkpoint",
        summary="The latest signed checkpoint",
        description=(
            "A C2SP tlog-checkpoint signed note by the log key, exactly as signed. "
            "Verify it with the verifier key from `manage.py ledger verifier-key`."
        ),
        responses={
            (200, "text/plain"): OpenApiResponse(OpenApiTypes.STR, description="The signed note."),
            401: PROBLEMS[401],
            404: PROBLEMS[404],
        },
    )
    def get(self, request: Request) -> HttpResponse:
        cp = log.latest_checkpoint()
        if cp is None:
            raise exceptions.NotFound("no checkpoint has been published yet")
        response = HttpResponse(cp.note.encode(), content_type="text/plain; charset=utf-8")
        response["Cache-Control"] = "no-cache"
        return response


class EntryListView(APIView):
    @extend_schema(
        operation_id="ledger_entries_submit",
        summary="Submit an entry signed with your own key",
        description=(
            "For members whose keys are external: the envelope is checked, its signature "
            "verified under the registered author key, the entry checked by the rules of its "
            "kind (who may make it, for whom), then appended. Retrying with the same envelope "
            "id returns the entry already appended (200)."
        ),
        request=s.EntrySubmissionSerializer,
        responses={
            201: s.EntrySerializer,
            200: OpenApiResponse(s.EntrySerializer, description="Already appended (a retry)."),
            400: PROBLEMS[400],
            401: PROBLEMS[401],
            403: OpenApiResponse(s.ProblemSerializer, description="Not allowed (problem+json)."),
            409: OpenApiResponse(s.ProblemSerializer, description="Conflict (problem+json)."),
            413: OpenApiResponse(
                s.ProblemSerializer, description="Envelope or body too large (problem+json)."
            ),
        },
    )
    def post(self, request: Request) -> Response:
        body = s.EntrySubmissionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            done = submissions.submit(
                envelope=body.validated_data["envelope"],
                signature=body.validated_data["signature"],
                submitter=request.user,
            )
        except submissions.Refused as exc:
            raise Refusal(exc) from exc
        entry = Entry.objects.get(index=done.entry.index)
        return Response(s.EntrySerializer(entry).data, status=201 if done.created else 200)

    @extend_schema(
        operation_id="ledger_entries_list",
        summary="Entries in index order",
        description=(
            "Cursor pagination: pass the last index you have as `after`. "
            "Each page costs one index range scan, however long the log."
        ),
        parameters=[s.EntriesQuery],
        responses={200: s.EntryPageSerializer, 400: PROBLEMS[400], 401: PROBLEMS[401]},
    )
    def get(self, request: Request) -> Response:
        q = _query(s.EntriesQuery, request)
        qs = Entry.objects.filter(index__gt=q["after"]).order_by("index")
        if q.get("kind"):
            qs = qs.filter(kind=q["kind"])
        rows = list(qs[: q["limit"] + 1])
        more = len(rows) > q["limit"]
        rows = rows[: q["limit"]]
        next_url = None
        if more:
            params = {"after": rows[-1].index, "limit": q["limit"]}
            if q.get("kind"):
                params["kind"] = q["kind"]
            next_url = request.build_absolute_uri(f"{request.path}?{urlencode(params)}")
        return Response(
            {
                "entries": s.EntrySerializer(rows, many=True).data,
                "next": next_url,
                "tree_size": log.tree_size(),
            }
        )


class EntryDetailView(APIView):
    @extend_schema(
        operation_id="ledger_entries_retrieve",
        summary="One entry, with its exact leaf bytes and leaf hash",
        responses={200: s.EntrySerializer, 401: PROBLEMS[401], 404: PROBLEMS[404]},
    )
    def get(self, request: Request, index: int) -> Response:
        entry = Entry.objects.filter(index=index).first()
        if entry is None:
            raise exceptions.NotFound(f"there is no entry at index {index}")
        return Response(s.EntrySerializer(entry).data)


class InclusionProofView(APIView):
    @extend_schema(
        operation_id="ledger_proofs_inclusion",
        summary="RFC 9162 inclusion proof of an entry in a tree size",
        parameters=[s.InclusionQuery],
        responses={200: s.InclusionProofSerializer, 400: PROBLEMS[400], 401: PROBLEMS[401]},
    )
    def get(self, request: Request) -> Response:
        q = _query(s.InclusionQuery, request)
        size = log.tree_size()
        if q["tree_size"] > size:
            raise exceptions.ValidationError(
                f"tree_size {q['tree_size']} is larger than the tree ({size})"
            )
        proof = log.inclusion_proof(q["index"], q["tree_size"])
        return Response(
            {"index": q["index"], "tree_size": q["tree_size"], "proof": [_b64(h) for h in proof]}
        )


class ConsistencyProofView(APIView):
    @extend_schema(
        operation_id="ledger_proofs_consistency",
        summary="RFC 9162 consistency proof between two tree sizes",
        parameters=[
            OpenApiParameter("from", int, required=True, description="The older tree size (>= 1)."),
            OpenApiParameter("to", int, required=True, description="The newer tree size."),
        ],
        responses={200: s.ConsistencyProofSerializer, 400: PROBLEMS[400], 401: PROBLEMS[401]},
    )
    def get(self, request: Request) -> Response:
        q = _query(s.ConsistencyQuery, request)
        size = log.tree_size()
        if q["new"] > size:
            raise exceptions.ValidationError(f"to {q['new']} is larger than the tree ({size})")
        proof = log.consistency_proof(q["old"], q["new"])
        return Response({"from": q["old"], "to": q["new"], "proof": [_b64(h) for h in proof]})


class KeyListView(APIView):
    @extend_schema(
        operation_id="ledger_keys_list",
        summary="The public key registry",
        description="Every key the log knows, with the index range it may sign.",
        parameters=[
            OpenApiParameter(
                "kind", str, enum=Key.Kind.values, description="Only keys of this kind."
            ),
        ],
        responses={200: s.KeySerializer(many=True), 400: PROBLEMS[400], 401: PROBLEMS[401]},
    )
    def get(self, request: Request) -> Response:
        qs = Key.objects.order_by("registered_in")
        kind = request.query_params.get("kind")
        if kind:
            if kind not in Key.Kind.values:
                raise exceptions.ValidationError(
                    f"kind must be one of {', '.join(Key.Kind.values)}"
                )
            qs = qs.filter(kind=kind)
        return Response(s.KeySerializer(qs, many=True).data)
