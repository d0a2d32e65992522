"""REST endpoints for agreements and their documents.

Agreements are the consortium's shared record: every seat holder reads them (their
terms are on the ledger). Documents not yet named by an agreement are read by the
members that uploaded them, the secretariat and auditors. Writes call the services in
``consortium.governance.agreements``; members with external keys submit the same entries signed
by their own keys to ``POST /api/v1/ledger/entries``.
"""

from __future__ import annotations

import hashlib

import django_filters
from django.conf import settings
from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, parsers, serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from consortium.governance import agreements, documents, selectors
from consortium.governance.api import act, refusals
from consortium.governance.models import Agreement, AgreementParty, Document
from consortium.web.filters import FilterSet, TrueFalseFilter
from consortium.web.problems import ProblemException, bad_request, not_found
from consortium.web.sessionauth import session_stepup_required
from consortium.web.viewsets import PROBLEMS, WRITE_PROBLEMS, ApiViewSet
from ledger.api.serializers import StrictSerializer


class RawBodyParser(parsers.BaseParser):
    """The request body as bytes, whatever its media type (document uploads)."""

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None) -> bytes:
        # Read at most one byte past the view's limit: a larger body is refused whole
        # (413), never cut short and used, and never held in memory beyond the limit.
        view = (parser_context or {}).get("view")
        limit = getattr(settings, getattr(view, "max_body_setting", "AGREEMENT_DOCUMENT_MAX_BYTES"))
        data = stream.read(limit + 1) if stream is not None else b""
        if len(data) > limit:
            raise ProblemException(413, f"the body is larger than {limit} bytes")
        return data


class DocumentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Document
        fields = ["sha256", "name", "media_type", "size", "uploaded_at"]


class PartySerializer(serializers.ModelSerializer):
    member = serializers.CharField(source="member_id")
    signed = serializers.SerializerMethodField()
    withdrawn = serializers.SerializerMethodField()

    class Meta:
        model = AgreementParty
        fields = [
            "member",
            "required",
            "signed",
            "signed_in",
            "signed_at",
            "signed_by",
            "withdrawn",
            "withdrawn_in",
            "withdrawal_reason",
        ]

    def get_signed(self, party) -> bool:
        return party.signed_in is not None and party.withdrawn_in is None

    def get_withdrawn(self, party) -> bool:
        return party.withdrawn_in is not None


class AgreementSerializer(serializers.ModelSerializer):
    supersedes = serializers.UUIDField(source="supersedes_id", allow_null=True)
    document = serializers.SerializerMethodField()
    parties = PartySerializer(many=True)

    class Meta:
        model = Agreement
        fields = [
            "id",
            "series",
            "version",
            "kind",
            "title",
            "state",
            "terms",
            "terms_sha256",
            "document",
            "supersedes",
            "proposed_in",
            "in_force_in",
            "closed_in",
            "closed_reason",
            "parties",
        ]

    def get_document(self, a) -> dict:
        return {
            "sha256": a.document_sha256,
            "name": a.document_name,
            "size": a.document_size,
            "url": f"/api/v1/documents/{a.document_sha256}",
        }


class AgreementCreateSerializer(StrictSerializer):
    kind = serializers.ChoiceField(choices=Agreement.Kind.choices)
    title = serializers.CharField(max_length=300)
    terms = serializers.JSONField(help_text="Structured terms; see docs/agreements.md.")
    document_sha256 = serializers.RegexField(
        r"^[0-9a-f]{64}$", help_text="SHA-256 of a document uploaded to /api/v1/documents."
    )
    supersedes = serializers.UUIDField(
        required=False, help_text="The agreement in force this version amends."
    )


class SignatureSerializer(StrictSerializer):
    terms_sha256 = serializers.CharField(help_text="The terms_sha256 you read and approve.")
    document_sha256 = serializers.CharField(help_text="The document SHA-256 you read and approve.")


class DocumentQuery(StrictSerializer):
    """The query of a document upload (its body is the document's bytes)."""

    name = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=255,
        error_messages={"max_length": "a file name of at most 255 characters"},
    )


class ReasonSerializer(StrictSerializer):
    reason = serializers.CharField(max_length=300, allow_blank=True, required=False, default="")


class AgreementFilter(FilterSet):
    state = django_filters.ChoiceFilter(choices=Agreement.State.choices)
    kind = django_filters.ChoiceFilter(choices=Agreement.Kind.choices)
    awaiting_signature = TrueFalseFilter(
        method="awaiting", help_text="Only those awaiting your member's signature."
    )

    def awaiting(self, queryset, name, value: bool):
        if not value:
            return queryset
        pending = selectors.awaiting_signature(self.request.user).values("agreement_id")
        return queryset.filter(id__in=pending)


def _full(agreement: Agreement) -> dict:
    fresh = Agreement.objects.prefetch_related("parties").get(id=agreement.id)
    return AgreementSerializer(fresh).data


@extend_schema_view(
    list=extend_schema(
        operation_id="agreements_list", summary="Agreements you may see, newest first"
    ),
    retrieve=extend_schema(
        operation_id="agreements_retrieve",
        summary="One agreement: terms, hashes, and who has signed and who has not",
        responses={200: AgreementSerializer, **PROBLEMS},
    ),
)
class AgreementViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    queryset = Agreement.objects.prefetch_related("parties")
    serializer_class = AgreementSerializer
    filterset_class = AgreementFilter
    ordering = ("-proposed_in", "id")
    lookup_value_converter = "uuid"
    not_found = "no agreement {pk}"

    def visible(self, queryset):
        return queryset & selectors.visible_agreements(self.request.user)

    @extend_schema(
        operation_id="agreements_create",
        summary="Propose an agreement, or an amendment of one in force",
        description=(
            "The secretariat, or a signatory of a member that is a party. Upload the "
            "document first. The terms are checked against the schema; every error names "
            "its field."
        ),
        request=AgreementCreateSerializer,
        responses={201: AgreementSerializer, **WRITE_PROBLEMS},
    )
    def create(self, request: Request) -> Response:
        d = self.validated(AgreementCreateSerializer)
        supersedes = self.get_object(d["supersedes"]) if d.get("supersedes") else None
        agreement = act(
            request,
            agreements.agreement_propose,
            kind=d["kind"],
            title=d["title"],
            terms=d["terms"],
            document_sha256=d["document_sha256"],
            supersedes=supersedes,
        )
        return Response(_full(agreement), status=201)

    @extend_schema(
        operation_id="agreements_sign",
        summary="Sign for your member (a signatory; your member's hosted key signs)",
        description=(
            "Send the terms_sha256 and document_sha256 you read: if the agreement is not "
            "what you read, nothing is signed (409). Members with external keys submit a "
            "signed agreement.signed to POST /api/v1/ledger/entries."
        ),
        request=SignatureSerializer,
        responses={201: PartySerializer, **WRITE_PROBLEMS},
    )
    @action(detail=True, methods=["post"], url_path="signatures")
    @session_stepup_required
    def sign(self, request: Request, pk) -> Response:
        d = self.validated(SignatureSerializer)
        party = act(request, agreements.agreement_sign, agreement=self.get_object(), **d)
        return Response(PartySerializer(party).data, status=201)

    @extend_schema(
        operation_id="agreements_withdraw",
        summary="Withdraw your member from the agreement (a signatory of a party)",
        request=ReasonSerializer,
        responses={201: PartySerializer, **WRITE_PROBLEMS},
    )
    @action(detail=True, methods=["post"], url_path="withdrawal")
    def withdraw(self, request: Request, pk) -> Response:
        reason = self.validated(ReasonSerializer)["reason"]
        party = act(
            request, agreements.agreement_withdraw, agreement=self.get_object(), reason=reason
        )
        return Response(PartySerializer(party).data, status=201)

    @extend_schema(
        operation_id="agreements_terminate",
        summary="Abandon an agreement not yet in force (the secretariat)",
        description="An agreement in force ends by an accepted proposal (agreement.terminate).",
        request=ReasonSerializer,
        responses={200: AgreementSerializer, **WRITE_PROBLEMS},
    )
    @action(detail=True, methods=["post"], url_path="termination")
    def terminate(self, request: Request, pk) -> Response:
        reason = self.validated(ReasonSerializer)["reason"]
        agreement = act(
            request, agreements.agreement_terminate, agreement=self.get_object(), reason=reason
        )
        return Response(_full(agreement))


class DocumentViewSet(ApiViewSet):
    parser_classes = [RawBodyParser]
    lookup_field = "sha256"
    lookup_value_converter = "str"

    @extend_schema(
        operation_id="documents_upload",
        summary="Upload an agreement document (the secretariat, or a member's signatory)",
        description=(
            "The body is the document's bytes; its Content-Type is kept. Answers with the "
            "SHA-256 to name in an agreement. The same bytes twice are stored once (200)."
        ),
        parameters=[OpenApiParameter("name", str, required=True, description="File name.")],
        request={"application/octet-stream": OpenApiTypes.BINARY},
        responses={
            201: DocumentSerializer,
            200: DocumentSerializer,
            **WRITE_PROBLEMS,
            413: OpenApiResponse(description="Too large (problem+json)."),
        },
    )
    def create(self, request: Request) -> Response:
        name = self.validated(DocumentQuery, request.query_params.dict())["name"]
        if not name:
            raise bad_request("give the document's file name: ?name=treaty.pdf")
        body = request.data if isinstance(request.data, bytes) else b""
        existed = Document.objects.filter(sha256=hashlib.sha256(body).hexdigest()).exists()
        with refusals():
            doc = documents.document_store(
                actor=request.user,
                name=name,
                content=body,
                media_type=(request.content_type or "").split(";")[0].strip(),
            )
        return Response(DocumentSerializer(doc).data, status=200 if existed else 201)

    @extend_schema(
        operation_id="documents_retrieve",
        summary="Download a document you may read (check its SHA-256 yourself)",
        description="Served with the media type it was uploaded with (PDF, text, ...).",
        responses={(200, "*/*"): OpenApiTypes.BINARY, **PROBLEMS},
    )
    def retrieve(self, request: Request, sha256: str):
        doc = selectors.readable_document(request.user, sha256)
        if doc is None:
            raise not_found(f"no document {sha256}")
        response = FileResponse(
            doc.file.open("rb"),
            as_attachment=True,
            filename=doc.name,
            content_type=doc.media_type,
        )
        response["ETag"] = f'"{doc.sha256}"'
        response["X-Content-Type-Options"] = "nosniff"
        return response
