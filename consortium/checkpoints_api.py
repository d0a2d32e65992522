"""REST endpoints for models, training runs and checkpoints, and provenance bundles.

Every seat holder reads them: what was published, and the means to verify it offline.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from consortium import checkpoints
from consortium.access import entitlement
from consortium.api import PROBLEMS, WRITE_PROBLEMS, _refused
from consortium.governance import GovernanceError, visible_members_of
from consortium.models import ModelCheckpoint, TrainedModel, TrainingRun
from consortium.problems import bad_request, not_found
from consortium.terms import ACCESS_SCOPES


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
        fields = ["digest", "model", "name", "run", "files", "size", "state", "published_in",
                  "blocked_in", "blocked_reason"]  # fmt: skip


class ModelListView(APIView):
    @extend_schema(operation_id="models_list", summary="Models and the agreements they are under",
                   responses={200: TrainedModelSerializer(many=True), **PROBLEMS})  # fmt: skip
    def get(self, request: Request) -> Response:
        return Response(TrainedModelSerializer(TrainedModel.objects.all(), many=True).data)


class TrainingRunListView(APIView):
    @extend_schema(operation_id="training_runs_list",
                   summary="Training runs: the datasets and compute each used",
                   parameters=[OpenApiParameter("model", str)],
                   responses={200: TrainingRunSerializer(many=True), **PROBLEMS})  # fmt: skip
    def get(self, request: Request) -> Response:
        qs = TrainingRun.objects.all()
        if request.query_params.get("model"):
            qs = qs.filter(model_id=request.query_params["model"])
        return Response(TrainingRunSerializer(qs, many=True).data)


class CheckpointListView(APIView):
    @extend_schema(operation_id="checkpoints_list", summary="Published checkpoints",
                   parameters=[OpenApiParameter("model", str),
                               OpenApiParameter("state", str, enum=ModelCheckpoint.State.values)],
                   responses={200: CheckpointSerializer(many=True), 400: WRITE_PROBLEMS[400],
                              **PROBLEMS})  # fmt: skip
    def get(self, request: Request) -> Response:
        qs = ModelCheckpoint.objects.all()
        if request.query_params.get("model"):
            qs = qs.filter(model_id=request.query_params["model"])
        state = request.query_params.get("state")
        if state:
            if state not in ModelCheckpoint.State.values:
                raise bad_request(f"state must be one of {', '.join(ModelCheckpoint.State.values)}")
            qs = qs.filter(state=state)
        return Response(CheckpointSerializer(qs, many=True).data)


def _checkpoint(digest) -> ModelCheckpoint:
    cp = ModelCheckpoint.objects.filter(digest=digest).first()
    if cp is None:
        raise not_found(f"no checkpoint {digest}")
    return cp


class CheckpointDetailView(APIView):
    @extend_schema(operation_id="checkpoints_retrieve", summary="One checkpoint and its files",
                   responses={200: CheckpointSerializer, **PROBLEMS})  # fmt: skip
    def get(self, request: Request, digest: str) -> Response:
        return Response(CheckpointSerializer(_checkpoint(digest)).data)


class BundleView(APIView):
    @extend_schema(
        operation_id="checkpoints_bundle",
        summary="The provenance bundle of a checkpoint, for offline verification",
        description="Verify downloaded files with `python -m ledger.provenance verify DIR "
        "--bundle bundle.json --vkey <the log's verifier key>` (PyNaCl only).",
        responses={200: OpenApiTypes.OBJECT, 409: WRITE_PROBLEMS[409], **PROBLEMS},
    )
    def get(self, request: Request, digest: str) -> Response:
        try:
            return Response(checkpoints.provenance_bundle(_checkpoint(digest)))
        except GovernanceError as exc:
            raise _refused(exc) from exc


class AccessCheckView(APIView):
    @extend_schema(
        operation_id="access_check",
        summary="May your member download this checkpoint, in this scope? Allow or deny, "
        "with the rule and the figures behind it",
        parameters=[
            OpenApiParameter("checkpoint", str, required=True, description="Manifest digest."),
            OpenApiParameter("scope", str, enum=list(ACCESS_SCOPES)),
            OpenApiParameter("member", str, description="The secretariat and auditors: any member."),
        ],
        responses={200: OpenApiTypes.OBJECT, 400: WRITE_PROBLEMS[400], **PROBLEMS},
    )  # fmt: skip
    def get(self, request: Request) -> Response:
        digest = request.query_params.get("checkpoint")
        if not digest:
            raise bad_request("checkpoint: give the checkpoint's manifest digest")
        checkpoint = _checkpoint(digest)
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
