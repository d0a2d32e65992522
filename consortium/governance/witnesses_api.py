"""Registering and retiring a member's witness (its signatory). The list of witnesses,
with where each stands, is the ledger's: ``GET /api/v1/ledger/witnesses``."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from consortium.governance import witnesses
from consortium.governance.api import act
from consortium.web.idempotency import ApiView
from consortium.web.viewsets import WRITE_PROBLEMS
from ledger.api.serializers import StrictSerializer
from ledger.api.witnesses import WitnessSerializer


class RegistrationSerializer(StrictSerializer):
    member = serializers.CharField(max_length=32, help_text="Your member's code.")
    url = serializers.CharField(
        max_length=500,
        help_text="The witness's submission prefix (http(s)://host[:port][/path]); "
        "the log POSTs to <url>/add-checkpoint.",
    )
    vkey = serializers.CharField(
        max_length=200,
        help_text="Its Ed25519 cosignature/v1 verifier key (name+hex8+base64), as "
        "`python -m ledger.witness keygen` prints it; its name is the witness's.",
    )
    mldsa_vkey = serializers.CharField(
        max_length=2000,
        required=False,
        allow_null=True,
        default=None,
        help_text="Its ML-DSA-44 verifier key, if it cosigns with one too.",
    )


class RetirementSerializer(StrictSerializer):
    witness = serializers.CharField(max_length=200, help_text="The witness's name.")
    reason = serializers.CharField(max_length=300)


def _validated(request: Request, serializer_class) -> dict:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class WitnessRegistrationView(ApiView):
    @extend_schema(
        operation_id="witnesses_register",
        summary="Register your member's witness (a signatory; signed by its member's key)",
        description=(
            "A `witness.registered` entry: the log sends each new checkpoint to the witness "
            "and keeps its cosignatures. The witness policy names witnesses by their keys."
        ),
        request=RegistrationSerializer,
        responses={201: WitnessSerializer, **WRITE_PROBLEMS},
    )
    def post(self, request: Request) -> Response:
        d = _validated(request, RegistrationSerializer)
        witness = act(request, witnesses.witness_register, **d)
        return Response(WitnessSerializer(witness).data, status=201)


class WitnessRetirementView(ApiView):
    @extend_schema(
        operation_id="witnesses_retire",
        summary="Retire your member's witness (a signatory): it is asked nothing after",
        request=RetirementSerializer,
        responses={200: WitnessSerializer, **WRITE_PROBLEMS},
    )
    def post(self, request: Request) -> Response:
        d = _validated(request, RetirementSerializer)
        witness = act(request, witnesses.witness_retire, name=d["witness"], reason=d["reason"])
        return Response(WitnessSerializer(witness).data)
