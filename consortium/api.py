"""Read endpoints for governance: members (public to every seat holder), and the
caller's own seat."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from consortium import governance
from consortium.models import Member, Seat
from consortium.problems import not_found
from ledger.api.serializers import ProblemSerializer

PROBLEMS = {
    401: OpenApiResponse(ProblemSerializer, description="Not authenticated (problem+json)."),
    404: OpenApiResponse(ProblemSerializer, description="Not found (problem+json)."),
}


class MemberSerializer(serializers.ModelSerializer):
    class Meta:
        model = Member
        fields = [
            "code",
            "kind",
            "name",
            "country",
            "status",
            "figures",
            "registered_in",
            "changed_in",
        ]


class SeatSerializer(serializers.ModelSerializer):
    seat = serializers.UUIDField(source="id")
    member = serializers.CharField(source="member_id", allow_null=True)

    class Meta:
        model = Seat
        fields = ["seat", "member", "role", "assigned_in"]


class MemberListView(APIView):
    @extend_schema(
        operation_id="members_list",
        summary="The consortium's members",
        responses={200: MemberSerializer(many=True), 401: PROBLEMS[401]},
    )
    def get(self, request: Request) -> Response:
        return Response(MemberSerializer(Member.objects.order_by("code"), many=True).data)


class MemberDetailView(APIView):
    @extend_schema(
        operation_id="members_retrieve",
        summary="One member",
        responses={200: MemberSerializer, 401: PROBLEMS[401], 404: PROBLEMS[404]},
    )
    def get(self, request: Request, code: str) -> Response:
        member = Member.objects.filter(code=code).first()
        if member is None:
            raise not_found(f"no member {code}")
        return Response(MemberSerializer(member).data)


class SelfSeatView(APIView):
    @extend_schema(
        operation_id="delegates_self",
        summary="The caller's seat: member and role",
        responses={200: SeatSerializer, 401: PROBLEMS[401], 404: PROBLEMS[404]},
    )
    def get(self, request: Request) -> Response:
        seat = governance.seat_of(request.user)
        if seat is None:
            raise not_found("you hold no seat")
        return Response(SeatSerializer(seat).data)
