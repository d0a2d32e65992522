"""REST endpoints for models, training runs and checkpoints, provenance bundles, the
access gate (checks, downloads) and the access log.

Every seat holder reads them: what was published, and the means to verify it offline.
"""

from __future__ import annotations

import csv
from urllib.parse import quote

import django_filters
from django.conf import settings
from django.http import FileResponse, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.utils.http import content_disposition_header
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, serializers
from rest_framework.decorators import action
from rest_framework.exceptions import AuthenticationFailed, NotAuthenticated, PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response

from consortium.access import checkpoints, downloads, sending
from consortium.access.entitlements import entitlement
from consortium.access.models import DownloadEvent, ModelCheckpoint, TrainedModel, TrainingRun
from consortium.governance.api import refusals
from consortium.governance.selectors import visible_members_of
from consortium.governance.terms import ACCESS_SCOPES
from consortium.web import storage
from consortium.web.filters import FilterSet, IsoDateFilter, choices
from consortium.web.idempotency import ApiView
from consortium.web.problems import ProblemException, bad_request, not_found
from consortium.web.sessionauth import session_stepup_required
from consortium.web.viewsets import LIST_PROBLEMS, PROBLEMS, WRITE_PROBLEMS, ApiViewSet
from ledger.api.serializers import StrictSerializer


class TrainedModelSerializer(serializers.ModelSerializer):
    agreement = serializers.UUIDField(source="agreement_id")

    class Meta:
        model = TrainedModel
        fields = ["code", "name", "agreement", "registered_in"]


class TrainingRunSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="model_id")

    class Meta:
        model = TrainingRun
        fields = ["id", "model", "name", "datasets", "compute", "recorded_in"]


class CheckpointSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="model_id")
    run = serializers.UUIDField(source="run_id", allow_null=True)

    class Meta:
        model = ModelCheckpoint
        fields = [
            "digest",
            "model",
            "name",
            "run",
            "files",
            "size",
            "state",
            "published_in",
            "blocked_in",
            "blocked_reason",
        ]


@extend_schema_view(
    list=extend_schema(
        operation_id="models_list", summary="Models and the agreements they are under"
    )
)
class TrainedModelViewSet(mixins.ListModelMixin, ApiViewSet):
    queryset = TrainedModel.objects.all()
    serializer_class = TrainedModelSerializer
    ordering = ("code",)


class TrainingRunFilter(FilterSet):
    model = django_filters.CharFilter()


@extend_schema_view(
    list=extend_schema(
        operation_id="training_runs_list",
        summary="Training runs: the datasets and compute each used",
    )
)
class TrainingRunViewSet(mixins.ListModelMixin, ApiViewSet):
    queryset = TrainingRun.objects.all()
    serializer_class = TrainingRunSerializer
    filterset_class = TrainingRunFilter
    ordering = ("-recorded_in", "id")


class CheckpointFilter(FilterSet):
    model = django_filters.CharFilter()
    state = django_filters.ChoiceFilter(choices=ModelCheckpoint.State.choices)


class DownloadRequestSerializer(StrictSerializer):
    scope = serializers.ChoiceField(choices=list(ACCESS_SCOPES), default="full_weights")
    files = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text="Paths of the checkpoint (default: all).",
    )


@extend_schema_view(
    list=extend_schema(operation_id="checkpoints_list", summary="Published checkpoints"),
    retrieve=extend_schema(
        operation_id="checkpoints_retrieve",
        summary="One checkpoint and its files",
        responses={200: CheckpointSerializer, **PROBLEMS},
    ),
)
class CheckpointViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    queryset = ModelCheckpoint.objects.all()
    serializer_class = CheckpointSerializer
    filterset_class = CheckpointFilter
    ordering = ("-published_in", "digest")
    lookup_field = "digest"
    lookup_value_converter = "str"
    not_found = "no checkpoint {digest}"

    @extend_schema(
        operation_id="checkpoints_bundle",
        summary="The provenance bundle of a checkpoint, for offline verification",
        description="Verify downloaded files with `python -m ledger.provenance verify DIR "
        "--bundle bundle.json --vkey <the log's verifier key>` (PyNaCl only).",
        responses={200: OpenApiTypes.OBJECT, 409: WRITE_PROBLEMS[409], **PROBLEMS},
    )
    @action(detail=True, methods=["get"])
    def bundle(self, request: Request, digest: str) -> Response:
        checkpoint = self.get_object()
        with refusals():
            return Response(checkpoints.provenance_bundle(checkpoint))

    @extend_schema(
        operation_id="checkpoints_download",
        summary="Ask to download a checkpoint (a member's recorder or signatory)",
        description="The gate decides; an allow is recorded on the ledger (download.authorized) "
        "and answered with a short-lived token signed by the log key, and a URL per file.",
        request=DownloadRequestSerializer,
        responses={201: OpenApiTypes.OBJECT, **WRITE_PROBLEMS},
    )
    @action(detail=True, methods=["post"], url_path="downloads")
    @session_stepup_required
    def download(self, request: Request, digest: str) -> Response:
        d = self.validated(DownloadRequestSerializer)
        checkpoint = self.get_object()
        with refusals():
            auth, token = downloads.download_authorize(
                actor=request.user,
                checkpoint=checkpoint,
                request=request,
                scope=d["scope"],
                files=d.get("files"),
            )
        return Response(
            {
                "token": token,
                "expires": auth.expires,
                "rule": auth.rule,
                "figures": auth.figures,
                "authorized_in": auth.authorized_in,
                "files": {p: f"/api/v1/downloads/{token}/{quote(p, safe='/')}" for p in auth.files},
            },
            status=201,
        )


class AccessCheckView(ApiView):
    @extend_schema(
        operation_id="access_check",
        summary="May your member download this checkpoint, in this scope? Allow or deny, "
        "with the rule and the figures behind it",
        parameters=[
            OpenApiParameter("checkpoint", str, required=True, description="Manifest digest."),
            OpenApiParameter("scope", str, enum=list(ACCESS_SCOPES)),
            OpenApiParameter(
                "member", str, description="The secretariat and auditors: any member."
            ),
        ],
        responses={200: OpenApiTypes.OBJECT, 400: WRITE_PROBLEMS[400], **PROBLEMS},
    )
    def get(self, request: Request) -> Response:
        digest = request.query_params.get("checkpoint")
        if not digest:
            raise bad_request("checkpoint: give the checkpoint's manifest digest")
        checkpoint = ModelCheckpoint.objects.filter(digest=digest).first()
        if checkpoint is None:
            raise not_found(f"no checkpoint {digest}")
        scope = request.query_params.get("scope", "full_weights")
        if scope not in ACCESS_SCOPES:
            raise bad_request(f"scope must be one of {', '.join(ACCESS_SCOPES)}")
        visible = visible_members_of(request.user)
        member = request.query_params.get("member")
        if visible is None:
            if not member:
                raise bad_request("member: give the member to check for")
        else:
            own = next(iter(visible), None)
            if own is None:
                raise bad_request("you act for no member")
            if member and member != own:
                raise not_found(f"no member {member} you may check for")
            member = own
        decision = entitlement(member, checkpoint, scope)
        return Response({"member": member, "checkpoint": digest, **decision.as_dict()})


# --- downloads --------------------------------------------------------------------------------


class DownloadView(ApiView):
    """Serves one file of an authorised download: the gate's service decides
    (``downloads.serve``); this view turns its answer into HTTP."""

    def handle_exception(self, exc):
        # A request refused before the view runs (no credentials, a token whose seat is
        # gone) is kept in the access log like every other refusal.
        if isinstance(exc, (NotAuthenticated, AuthenticationFailed, PermissionDenied)):
            downloads.refused_before_serving(
                request=self.request._request,
                token=self.kwargs.get("token", ""),
                path=self.kwargs.get("path", ""),
                reason=str(exc.detail),
            )
        return super().handle_exception(exc)

    @extend_schema(
        operation_id="downloads_file",
        summary="The bytes of one file of an authorised download (Range, ETag)",
        description="The token must be unexpired, signed by the log key, and the request "
        "authenticated as the holder of the seat it was issued to (still held, a recorder or "
        "signatory): `curl -H 'Authorization: Bearer <api token>' <url>`. The entitlement is "
        "checked again before any byte is served.",
        parameters=[OpenApiParameter("Range", str, OpenApiParameter.HEADER)],
        responses={
            (200, "application/octet-stream"): OpenApiTypes.BINARY,
            (206, "application/octet-stream"): OpenApiTypes.BINARY,
            302: OpenApiResponse(
                description="With DOWNLOAD_PRESIGNED_REDIRECT: to a "
                "short-lived presigned object-store URL."
            ),
            416: OpenApiResponse(description="Range not satisfiable (problem+json)."),
            **WRITE_PROBLEMS,
        },
    )
    def get(self, request: Request, token: str, path: str):
        try:
            serving = downloads.serve(
                request=request,
                token=token,
                path=path,
                range_header=request.headers.get("Range", ""),
                range_by_server=range_by_server(),
            )
        except downloads.Refused as exc:
            problem = ProblemException(exc.status, str(exc))
            problem.headers = exc.headers
            raise problem from exc
        return file_response(serving)


def range_by_server() -> bool:
    """Does the web server answer the Range (nginx, X-Accel-Redirect), not the view?"""
    return bool(settings.DOWNLOADS_ACCEL_REDIRECT) and not storage.is_object_store()


def file_response(serving: downloads.Serving):
    """The bytes of ``serving``, or where to fetch them, with the headers of a file
    download."""
    filename = serving.path.rsplit("/", 1)[-1]
    stored, first, length = serving.stored, serving.first, serving.length
    if settings.DOWNLOAD_PRESIGNED_REDIRECT:
        # The object store serves the bytes (and any Range) for a minute or so.
        response = HttpResponseRedirect(
            storage.presigned_url(
                stored, seconds=settings.DOWNLOAD_PRESIGNED_SECONDS, filename=filename
            )
        )
        response["Cache-Control"] = "no-store"
        return response
    status = 206 if serving.ranged else 200
    accel = sending.accel_redirect(serving)
    if accel is not None:
        # nginx sends the file and answers the Range itself (deploy/nginx/downloads.conf):
        # it keeps Content-Type, Content-Disposition, Accept-Ranges and Cache-Control
        # from this answer, and re-adds the ETag and nosniff the snippet names.
        response = HttpResponse(status=200, content_type="application/octet-stream")
        response["X-Accel-Redirect"] = accel
    elif (local := sending.local_slice(serving)) is not None:
        # A bounded slice of the local file: gunicorn's file wrapper sends its
        # Content-Length bytes with sendfile(2), other servers read just the slice.
        response = FileResponse(local, status=status, content_type="application/octet-stream")
        response["Content-Length"] = str(length)
    else:
        response = StreamingHttpResponse(
            storage.read_range(stored, first, length),
            status=status,
            content_type="application/octet-stream",
        )
        response["Content-Length"] = str(length)
    if serving.ranged and accel is None:
        response["Content-Range"] = f"bytes {first}-{serving.last}/{serving.size}"
    response["Accept-Ranges"] = "bytes"
    response["ETag"] = f'"{serving.sha256}"'
    response["Content-Disposition"] = content_disposition_header(True, filename)
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


ACCESS_LOG_FIELDS = [
    "at",
    "member",
    "username",
    "checkpoint",
    "path",
    "outcome",
    "reason",
    "token_id",
    "remote_addr",
    "bytes_served",
]


class DownloadEventSerializer(serializers.ModelSerializer):
    outcome = serializers.ChoiceField(choices=["served", "denied"])

    class Meta:
        model = DownloadEvent
        fields = ACCESS_LOG_FIELDS


class AccessLogFilter(FilterSet):
    member = django_filters.CharFilter()
    outcome = django_filters.ChoiceFilter(
        choices=choices(["served", "denied"]),
        error_messages={"invalid_choice": "outcome is served or denied"},
    )
    from_ = IsoDateFilter(field_name="at", lookup_expr="date__gte")
    to = IsoDateFilter(field_name="at", lookup_expr="date__lte")


class _Lines:
    """What ``csv.writer`` writes, handed back as the line it is."""

    def write(self, line: str) -> str:
        return line


def _csv_lines(queryset):
    writer = csv.writer(_Lines())
    yield writer.writerow(ACCESS_LOG_FIELDS)
    for row in queryset.values_list(*ACCESS_LOG_FIELDS).iterator():
        yield writer.writerow([v.isoformat() if hasattr(v, "isoformat") else v for v in row])


@extend_schema_view(
    list=extend_schema(
        operation_id="access_log",
        summary="The access log: files served and requests refused (your member's; all for "
        "the secretariat and auditors)",
        description="As JSON, a page at a time; as CSV (`output=csv`), every line that the "
        "filters select, in one file.",
        parameters=[OpenApiParameter("output", str, enum=["json", "csv"])],
        responses={
            (200, "application/json"): DownloadEventSerializer(many=True),
            (200, "text/csv"): OpenApiTypes.STR,
            **LIST_PROBLEMS,
        },
    )
)
class AccessLogViewSet(mixins.ListModelMixin, ApiViewSet):
    queryset = DownloadEvent.objects.all()
    serializer_class = DownloadEventSerializer
    filterset_class = AccessLogFilter
    ordering = ("-at", "-id")

    def visible(self, queryset):
        members = visible_members_of(self.request.user)
        return queryset if members is None else queryset.filter(member__in=members)

    def list(self, request: Request):
        output = request.query_params.get("output", "json")
        if output not in ("json", "csv"):
            raise bad_request("output is json or csv")
        if output == "json":
            return super().list(request)
        queryset = self.filter_queryset(self.get_queryset()).order_by(*self.ordering)
        response = StreamingHttpResponse(
            _csv_lines(queryset), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = 'attachment; filename="access-log.csv"'
        return response
