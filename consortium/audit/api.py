"""REST endpoints for audit exports: ask (202 and a status URL), follow, fetch the file."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from consortium.audit import exports as audit
from consortium.audit.models import AuditExport
from consortium.governance.api import PROBLEMS, WRITE_PROBLEMS, _refused
from consortium.governance.members import GovernanceError
from consortium.web import storage
from consortium.web.idempotency import ApiView
from consortium.web.problems import ProblemException, not_found
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


def _visible(request: Request, pk) -> AuditExport:
    export = AuditExport.objects.select_related("member").filter(id=pk).first()
    if export is None or not audit.may_read(request.user, export):
        raise not_found("no such audit export")
    return export


class AuditExportListView(ApiView):
    @extend_schema(
        operation_id="audit_exports_list",
        summary="Audit exports you may read (all for auditors and the secretariat)",
        responses={200: AuditExportSerializer(many=True), **PROBLEMS},
    )
    def get(self, request: Request) -> Response:
        qs = audit.visible_exports(request.user)[:200]
        return Response(AuditExportSerializer(qs, many=True).data)

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
    def post(self, request: Request) -> Response:
        body = AuditExportRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            export = audit.audit_export_request(actor=request.user, **body.validated_data)
        except GovernanceError as exc:
            raise _refused(exc) from exc
        export.refresh_from_db()
        if export.status == AuditExport.Status.FAILED and not export.started_at:
            raise ProblemException(503, f"the export could not be queued: {export.error}")
        url = f"/api/v1/audit/exports/{export.id}"
        return Response(AuditExportSerializer(export).data, status=202, headers={"Location": url})


class AuditExportView(ApiView):
    @extend_schema(
        operation_id="audit_exports_read",
        summary="An audit export's status and progress",
        responses={200: AuditExportSerializer, **PROBLEMS},
    )
    def get(self, request: Request, pk) -> Response:
        return Response(AuditExportSerializer(_visible(request, pk)).data)


class AuditExportFileView(ApiView):
    @extend_schema(
        operation_id="audit_exports_file",
        summary="The finished export (a zip file to verify with python -m consortium.audit.figures)",
        responses={
            (200, "application/zip"): OpenApiTypes.BINARY,
            409: OpenApiResponse(description="Not finished (problem+json)."),
            **PROBLEMS,
        },
    )
    def get(self, request: Request, pk):
        export = _visible(request, pk)
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
