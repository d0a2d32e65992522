"""The checkpoint the log serves its clients (the newest that meets the witness policy,
with its cosignatures), the registered witnesses and the witness alarms."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import exceptions, mixins, renderers, serializers, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ledger.api import caching
from ledger.api.serializers import ProblemSerializer
from ledger.api.views import PROBLEMS, NoteRenderer
from ledger.cosign.models import Witness, WitnessAlarm, WitnessContact
from ledger.cosign.served import cosigned_checkpoint
from ledger.reads import reads_from_replica

POLICY_HEADER = "Witness-Policy"


class PolicyUnmet(exceptions.APIException):
    """A witness policy is adopted, no checkpoint meets it, and the log fails closed."""

    status_code = 503
    default_detail = "no checkpoint meets the witness policy"


class CosignedCheckpointView(APIView):
    renderer_classes = [NoteRenderer, renderers.JSONRenderer]

    @extend_schema(
        operation_id="ledger_checkpoint",
        summary="The newest checkpoint that meets the witness policy, with its cosignatures",
        description=(
            "A C2SP tlog-checkpoint signed note by the log key, followed by every "
            "witness cosignature kept for it (C2SP tlog-cosignature lines). With a witness "
            "policy adopted, the newest checkpoint whose cosignatures meet it "
            "(`Witness-Policy: met`); when none does, 503 naming the witnesses missing, or "
            "with LEDGER_WITNESS_FAIL_OPEN the latest checkpoint the log signed "
            "(`Witness-Policy: unmet; fail-open`). With no policy adopted, the latest "
            "checkpoint (`Witness-Policy: none`). Witnesses read the log's own latest at "
            "`checkpoint/latest`."
        ),
        parameters=[
            OpenApiParameter(
                POLICY_HEADER,
                str,
                OpenApiParameter.HEADER,
                response=[200],
                enum=["met", "none", "unmet; fail-open"],
                description="Whether the checkpoint served meets the adopted witness policy.",
            )
        ],
        responses={
            (200, "text/plain"): OpenApiResponse(
                OpenApiTypes.STR, description="The signed note and its cosignatures."
            ),
            401: PROBLEMS[401],
            404: PROBLEMS[404],
            503: OpenApiResponse(
                ProblemSerializer,
                description="No checkpoint meets the witness policy (problem+json).",
            ),
        },
    )
    @reads_from_replica
    def get(self, request: Request) -> HttpResponse:
        served = cosigned_checkpoint()
        if served is None:
            raise exceptions.NotFound("no checkpoint has been published yet")
        if served.policy is None:
            state = "none"
        elif served.meets_policy:
            state = "met"
        elif served.fail_open:
            state = "unmet; fail-open"
        else:
            missing = ", ".join(served.missing) or "none registered"
            raise PolicyUnmet(
                f"no checkpoint meets the witness policy ({served.why or 'too few cosignatures'}); "
                f"the latest, at size {served.checkpoint.tree_size}, is not cosigned by: "
                f"{missing}"
            )
        size = served.checkpoint.tree_size
        caching.refuse_older(request, size)
        body = served.note.encode()
        response = HttpResponse(body, content_type="text/plain; charset=utf-8")
        response[POLICY_HEADER] = state
        return caching.conditional(request, response, caching.etag(body, size), caching.REVALIDATE)


class WitnessSerializer(serializers.ModelSerializer):
    active = serializers.BooleanField(read_only=True)
    last_size = serializers.SerializerMethodField(
        help_text="The latest size it cosigned, or told the log it holds."
    )
    last_contact = serializers.SerializerMethodField()
    last_error = serializers.SerializerMethodField()
    alarms = serializers.SerializerMethodField(help_text="How many alarms it raised.")

    class Meta:
        model = Witness
        fields = [
            "name",
            "member",
            "url",
            "vkey",
            "mldsa_vkey",
            "registered_in",
            "retired_in",
            "active",
            "last_size",
            "last_contact",
            "last_error",
            "alarms",
        ]

    def _contact(self, obj) -> WitnessContact | None:
        return WitnessContact.objects.filter(witness=obj.name).first()

    def get_last_size(self, obj) -> int | None:
        contact = self._contact(obj)
        return contact.last_size if contact else None

    def get_last_contact(self, obj) -> str | None:
        contact = self._contact(obj)
        return contact.last_contact.isoformat() if contact and contact.last_contact else None

    def get_last_error(self, obj) -> str:
        contact = self._contact(obj)
        return contact.last_error if contact else ""

    def get_alarms(self, obj) -> int:
        return WitnessAlarm.objects.filter(witness=obj.name).count()


class WitnessAlarmSerializer(serializers.ModelSerializer):
    class Meta:
        model = WitnessAlarm
        fields = ["id", "witness", "kind", "log_size", "witness_size", "detail", "raised_at"]


@extend_schema_view(
    list=extend_schema(
        operation_id="ledger_witnesses_list",
        summary="The witnesses members registered, and where each stands",
        responses={200: WitnessSerializer(many=True), 400: PROBLEMS[400], 401: PROBLEMS[401]},
    )
)
class WitnessViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    queryset = Witness.objects.all()
    serializer_class = WitnessSerializer
    ordering = ("registered_in", "name")


@extend_schema_view(
    list=extend_schema(
        operation_id="ledger_witness_alarms_list",
        summary="Witness alarms: refusals (422) and witnesses ahead of the log, newest first",
        description="Each a possible fork or rollback of the log; the count is the alarm counter.",
        responses={
            200: WitnessAlarmSerializer(many=True),
            400: PROBLEMS[400],
            401: PROBLEMS[401],
        },
    )
)
class WitnessAlarmViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    queryset = WitnessAlarm.objects.all()
    serializer_class = WitnessAlarmSerializer
    ordering = ("-raised_at", "-id")


class WitnessAlarmCountView(APIView):
    @extend_schema(
        operation_id="ledger_witness_alarms_count",
        summary="The witness alarm counter",
        responses={200: OpenApiTypes.OBJECT, 401: PROBLEMS[401]},
    )
    def get(self, request: Request) -> Response:
        return Response({"alarms": WitnessAlarm.objects.count()})
