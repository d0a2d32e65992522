"""Ledger endpoints: checkpoint, entries (and the submission of one), proofs, keys."""

from __future__ import annotations

import base64

import django_filters
from django import forms
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import exceptions, mixins, renderers, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ledger import checkpoints, proofs, services, submissions
from ledger.api import caching
from ledger.api import serializers as s
from ledger.api.pagination import EntryIndexPagination
from ledger.core import tlogproof
from ledger.models import Entry, Key
from ledger.reads import reads_from_replica

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


class NotYetCovered(exceptions.APIException):
    """The entry is beyond the checkpoint the log serves as cosigned (409)."""

    status_code = 409
    default_code = "not_yet_covered"


class PolicyUnmet(exceptions.APIException):
    """No checkpoint meets the witness policy and the log fails closed (503)."""

    status_code = 503
    default_code = "witness_policy_unmet"


def served_anyway(served) -> bool:
    """Whether a checkpoint below the witness policy is served all the same (the
    fail-open setting, as the checkpoint endpoint reads it)."""
    return bool(getattr(served, "fail_open", False))


def policy_state(served) -> str:
    """The ``Witness-Policy`` header the checkpoint endpoint sends with ``served``: none
    adopted, met, or unmet and served under the fail-open setting."""
    if getattr(served, "policy", None) is None:
        return "none"
    return "met" if served.meets_policy else "unmet; fail-open"


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
        operation_id="ledger_checkpoint_latest",
        summary="The latest signed checkpoint, without cosignatures (what witnesses read)",
        description=(
            "A C2SP tlog-checkpoint signed note by the log key, exactly as signed. "
            "Verify it with the verifier key from `manage.py ledger verifier-key`. "
            "Clients read `checkpoint`, which meets the witness policy."
        ),
        responses={
            (200, "text/plain"): OpenApiResponse(OpenApiTypes.STR, description="The signed note."),
            401: PROBLEMS[401],
            404: PROBLEMS[404],
        },
    )
    @reads_from_replica
    def get(self, request: Request) -> HttpResponse:
        cp = checkpoints.latest_checkpoint()
        if cp is None:
            raise exceptions.NotFound("no checkpoint has been published yet")
        caching.refuse_older(request, cp.tree_size)
        body = cp.note.encode()
        response = HttpResponse(body, content_type="text/plain; charset=utf-8")
        return caching.conditional(
            request, response, caching.etag(body, cp.tree_size), caching.REVALIDATE
        )


class _KindsField(forms.Field):
    """``kind``, repeatable (``?kind=a&kind=b``); an empty one reads as absent."""

    widget = forms.MultipleHiddenInput

    def clean(self, value):
        kinds = [v for v in (value or []) if v]
        if any(len(v) > 64 for v in kinds):
            raise forms.ValidationError("kind: Ensure this field has no more than 64 characters.")
        return kinds


# Described as one string, which is what each occurrence is: as an array, fuzzers send
# ``kind=true`` as a "boolean" the API should refuse, though it is a kind like any other.
@extend_schema_field({"type": "string", "maxLength": 64})
class KindsFilter(django_filters.Filter):
    field_class = _KindsField

    def filter(self, qs, value):
        return qs.filter(kind__in=value) if value else qs


class EntryFilter(django_filters.FilterSet):
    """The entries' filters, the same for the list, the events stream and the webhooks."""

    kind = KindsFilter(
        help_text="Only entries of this kind; repeat the parameter for several kinds "
        "(`kind=a&kind=b`)."
    )
    member = django_filters.CharFilter(
        max_length=64,
        method="by_member",
        help_text="Only entries signed by a key this member (or owner) holds or held.",
        error_messages={"max_length": "member: Ensure this field has no more than 64 characters."},
    )

    def by_member(self, qs, name, value):
        return qs.filter(author__in=Key.objects.filter(owner=value).values("fingerprint"))


class EntryViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    queryset = Entry.objects.all()
    serializer_class = s.EntrySerializer
    filterset_class = EntryFilter
    pagination_class = EntryIndexPagination
    lookup_field = "index"
    lookup_value_converter = "int"

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
                s.ProblemSerializer,
                description=(
                    "Body too large, an envelope over 65,364 bytes, or an entry whose leaf "
                    "would be over 65,535 bytes at its index, the most a C2SP tlog-tiles "
                    "entry bundle holds (problem+json); nothing is written."
                ),
            ),
        },
    )
    def create(self, request: Request) -> Response:
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
        responses={200: s.EntrySerializer(many=True), 400: PROBLEMS[400], 401: PROBLEMS[401]},
    )
    @reads_from_replica
    def list(self, request: Request) -> Response:
        return super().list(request)

    @extend_schema(
        operation_id="ledger_entries_retrieve",
        summary="One entry, with its exact leaf bytes and leaf hash",
        responses={200: s.EntrySerializer, 401: PROBLEMS[401], 404: PROBLEMS[404]},
    )
    @reads_from_replica
    def retrieve(self, request: Request, index: int) -> Response:
        entry = Entry.objects.filter(index=index).first()
        if entry is None:
            raise exceptions.NotFound(f"there is no entry at index {index}")
        return Response(s.EntrySerializer(entry).data)

    @extend_schema(
        operation_id="ledger_entries_tlog_proof",
        summary="The entry's C2SP tlog-proof, against the checkpoint served as cosigned",
        description=(
            "A `c2sp.org/tlog-proof@v1` file (C2SP tlog-proof): the entry's index, its RFC "
            "9162 inclusion proof, a blank line, and the checkpoint the log serves as "
            "cosigned, verbatim with its witnesses' cosignatures. Verify it offline with "
            "the entry's leaf bytes and your own C2SP tlog-policy file: "
            "`consortium-verify.pyz tlog-proof FILE --leaf LEAF --policy POLICY`. "
            "`Witness-Policy` says, as for `checkpoint`, whether that checkpoint meets the "
            "adopted witness policy. 409 while that checkpoint does not yet cover the "
            "entry; 503 when no checkpoint meets the witness policy and the log fails closed."
        ),
        parameters=[
            OpenApiParameter(
                "Witness-Policy",
                str,
                OpenApiParameter.HEADER,
                response=[200],
                enum=["met", "none", "unmet; fail-open"],
                description="Whether the checkpoint in the proof meets the adopted witness policy.",
            )
        ],
        responses={
            (200, "text/plain"): OpenApiResponse(
                OpenApiTypes.STR, description="The tlog-proof file."
            ),
            401: PROBLEMS[401],
            404: PROBLEMS[404],
            409: OpenApiResponse(
                s.ProblemSerializer,
                description="No checkpoint served as cosigned covers the entry yet (problem+json).",
            ),
            503: OpenApiResponse(
                s.ProblemSerializer,
                description="No checkpoint meets the witness policy and the log fails closed "
                "(problem+json).",
            ),
        },
    )
    @action(
        detail=True,
        methods=["get"],
        url_path="tlog-proof",
        renderer_classes=[NoteRenderer, renderers.JSONRenderer],
        pagination_class=None,
        filterset_class=None,
    )
    @reads_from_replica
    def tlog_proof(self, request: Request, index: int) -> HttpResponse:
        if not Entry.objects.filter(index=index).exists():
            raise exceptions.NotFound(f"there is no entry at index {index}")
        served = services.cosigned_checkpoint()
        if served is not None and not served.meets_policy and not served_anyway(served):
            raise PolicyUnmet(
                "no checkpoint meets the witness policy, and the log serves none without: "
                "ask again once the witnesses have cosigned"
            )
        if served is None or served.checkpoint.tree_size <= index:
            size = 0 if served is None else served.checkpoint.tree_size
            raise NotYetCovered(
                f"entry {index} is not yet covered by the checkpoint the log serves as "
                f"cosigned (tree size {size}); ask again after the next checkpoint"
            )
        size = served.checkpoint.tree_size
        text = tlogproof.format_proof(index, proofs.inclusion_proof(index, size), served.note)
        body = text.encode()
        response = HttpResponse(body, content_type=tlogproof.MEDIA_TYPE)
        response["Content-Disposition"] = (
            f'attachment; filename="entry-{index}{tlogproof.EXTENSION}"'
        )
        response["Witness-Policy"] = policy_state(served)
        # Against the checkpoint served as cosigned, which moves on: revalidated.
        return caching.conditional(request, response, caching.etag(body), caching.REVALIDATE)


class InclusionProofView(APIView):
    @extend_schema(
        operation_id="ledger_proofs_inclusion",
        summary="RFC 9162 inclusion proof of an entry in a tree size",
        parameters=[s.InclusionQuery],
        responses={200: s.InclusionProofSerializer, 400: PROBLEMS[400], 401: PROBLEMS[401]},
    )
    @reads_from_replica
    def get(self, request: Request) -> Response:
        q = _query(s.InclusionQuery, request)
        size = proofs.tree_size()
        if q["tree_size"] > size:
            raise exceptions.ValidationError(
                f"tree_size {q['tree_size']} is larger than the tree ({size})"
            )
        proof = proofs.inclusion_proof(q["index"], q["tree_size"])
        response = Response(
            {"index": q["index"], "tree_size": q["tree_size"], "proof": [_b64(h) for h in proof]}
        )
        # The proof of an index in a given tree size never changes.
        tag = caching.etag(f"inclusion/{q['index']}/{q['tree_size']}/".encode() + b"".join(proof))
        return caching.conditional(request, response, tag, caching.IMMUTABLE)


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
    @reads_from_replica
    def get(self, request: Request) -> Response:
        q = _query(s.ConsistencyQuery, request)
        size = proofs.tree_size()
        if q["new"] > size:
            raise exceptions.ValidationError(f"to {q['new']} is larger than the tree ({size})")
        proof = proofs.consistency_proof(q["old"], q["new"])
        response = Response({"from": q["old"], "to": q["new"], "proof": [_b64(h) for h in proof]})
        # The proof between two given tree sizes never changes.
        tag = caching.etag(f"consistency/{q['old']}/{q['new']}/".encode() + b"".join(proof))
        return caching.conditional(request, response, tag, caching.IMMUTABLE)


class KeyFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(
        choices=Key.Kind.choices,
        help_text="Only keys of this kind.",
        error_messages={"invalid_choice": f"kind must be one of {', '.join(Key.Kind.values)}"},
    )


@extend_schema_view(
    list=extend_schema(
        operation_id="ledger_keys_list",
        summary="The public key registry",
        description="Every key the log knows, with the index range it may sign.",
        responses={200: s.KeySerializer(many=True), 400: PROBLEMS[400], 401: PROBLEMS[401]},
    )
)
class KeyViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """The key registry: a list in the project's cursor pages (``DEFAULT_PAGINATION_CLASS``)."""

    queryset = Key.objects.all()
    serializer_class = s.KeySerializer
    filterset_class = KeyFilter
    ordering = ("registered_in", "fingerprint")

    @reads_from_replica
    def list(self, request: Request) -> Response:
        return super().list(request)
