"""REST endpoints for audit exports: ask (202 and a status URL), follow, fetch the file."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from consortium.audit import exports as audit
from consortium.audit import selectors
from consortium.audit.models import AuditExport
from consortium.governance.api import refusals
from consortium.web import storage
from consortium.web.problems import ProblemException
from consortium.web.viewsets import PROBLEMS, WRITE_PROBLEMS, ApiViewSet
from ledger.api.fields import AsciiDateField, AsciiIntegerField
from ledger.api.serializers import StrictSerializer


class AuditExportRequestSerializer(StrictSerializer):
    member = serializers.CharField(
        max_length=32,
        required=False,
        allow_blank=True,
        help_text="Only what concerns this member (a member's delegate: always its own).",
    )
    date_from = AsciiDateField(required=False, help_text="First day (UTC) of a period.")
    date_to = AsciiDateField(required=False, help_text="Last day (UTC) of a period.")
    first = AsciiIntegerField(required=False, min_value=0, help_text="First index.")
    end = AsciiIntegerField(required=False, min_value=1, help_text="The index after the last one.")


class AuditExportSerializer(serializers.ModelSerializer):
    member = serializers.CharField(source="member_id", allow_null=True)
    progress = serializers.IntegerField(source="percent")
    status_url = serializers.SerializerMethodField()
    file_url = serializers.SerializerMethodField()

    class Meta:
        model = AuditExport
        fields = [
            "id",
            "status",
            "step",
            "progress",
            "done",
            "total",
            "member",
            "date_from",
            "date_to",
            "first",
            "end",
            "range_first",
            "range_end",
            "anchor",
            "entries",
            "size",
            "bundle_sha256",
            "manifest_sha256",
            "recorded_in",
            "error",
            "requester",
            "created_at",
            "started_at",
            "finished_at",
            "status_url",
            "file_url",
        ]

    def get_status_url(self, obj) -> str:
        return f"/api/v1/audit/exports/{obj.id}"

    def get_file_url(self, obj) -> str | None:
        return f"/api/v1/audit/exports/{obj.id}/file" if obj.status == "done" else None


@extend_schema_view(
    list=extend_schema(
        operation_id="audit_exports_list",
        summary="Audit exports you may read (all for auditors and the secretariat)",
    ),
    retrieve=extend_schema(
        operation_id="audit_exports_read",
        summary="An audit export's status and progress",
        responses={200: AuditExportSerializer, **PROBLEMS},
    ),
)
class AuditExportViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    queryset = AuditExport.objects.select_related("member")
    serializer_class = AuditExportSerializer
    ordering = ("-created_at", "id")
    lookup_value_converter = "uuid"
    # Another member's export is not found, whether or not it exists.
    not_found = "no such audit export"

    def visible(self, queryset):
        return queryset & selectors.visible_exports(self.request.user)

    @extend_schema(
        operation_id="audit_exports_create",
        summary="Ask for an audit export: built in the background; follow its status URL",
        request=AuditExportRequestSerializer,
        responses={
            202: AuditExportSerializer,
            503: OpenApiResponse(description="The task queue could not be reached (problem+json)."),
            **WRITE_PROBLEMS,
        },
    )
    def create(self, request: Request) -> Response:
        d = self.validated(AuditExportRequestSerializer)
        with refusals():
            export = audit.audit_export_request(actor=request.user, **d)
        export.refresh_from_db()
        if export.status == AuditExport.Status.FAILED and not export.started_at:
            raise ProblemException(503, f"the export could not be queued: {export.error}")
        url = f"/api/v1/audit/exports/{export.id}"
        return Response(AuditExportSerializer(export).data, status=202, headers={"Location": url})

    @extend_schema(
        operation_id="audit_exports_file",
        summary="The finished export (a zip file to verify with python -m consortium.audit.figures)",
        responses={
            (200, "application/zip"): OpenApiTypes.BINARY,
            409: OpenApiResponse(description="Not finished (problem+json)."),
            **PROBLEMS,
        },
    )
    @action(detail=True, methods=["get"])
    def file(self, request: Request, pk):
        export = self.get_object()
        if export.status != AuditExport.Status.DONE or not export.file:
            raise ProblemException(409, f"the export is {export.status}, not done")
        response = storage.attachment(
            export.file.name,
            filename=f"audit-{export.id}.zip",
            content_type="application/zip",
            size=export.size,
        )
        response["ETag"] = f'"{export.bundle_sha256}"'
        return response
