"""Read endpoints for governance: members (public to every seat holder), and the
caller's own seat."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from consortium import governance, proposals
from consortium.governance import GovernanceError
from consortium.models import Member, Proposal, Seat, Vote
from consortium.problems import ProblemException, bad_request, not_found
from ledger.api.serializers import ProblemSerializer
from ledger.log import IdempotencyConflict, LedgerError

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


# --- proposals and votes -------------------------------------------------------------------


class ProposalSerializer(serializers.ModelSerializer):
    class Meta:
        model = Proposal
        fields = [
            "id", "title", "actions", "rule_name", "rule", "eligible", "deadline", "state",
            "tally", "opened_in", "closed_in",
        ]  # fmt: skip


class ProposalCreateSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=300)
    actions = serializers.ListField(child=serializers.DictField(), min_length=1)
    deadline = serializers.DateTimeField(help_text="RFC 3339; in the future.")
    rule = serializers.CharField(
        required=False, help_text="A voting rule's name (default: the rules' default)."
    )


class VoteCreateSerializer(serializers.Serializer):
    choice = serializers.ChoiceField(choices=["yes", "no", "abstain"])


class VoteSerializer(serializers.ModelSerializer):
    member = serializers.CharField(source="member_id")

    class Meta:
        model = Vote
        fields = ["member", "choice", "cast_in", "cast_at"]


IDEMPOTENCY = OpenApiParameter(
    "Idempotency-Key", str, OpenApiParameter.HEADER, required=False,
    description="Makes a retry safe: the same key returns what the first request did.",
)  # fmt: skip
WRITE_PROBLEMS = {
    400: OpenApiResponse(ProblemSerializer, description="Bad request (problem+json)."),
    401: PROBLEMS[401],
    403: OpenApiResponse(ProblemSerializer, description="Not allowed (problem+json)."),
    404: PROBLEMS[404],
    409: OpenApiResponse(ProblemSerializer, description="Conflict (problem+json)."),
}


def _refused(exc) -> ProblemException:
    if isinstance(exc, IdempotencyConflict):
        return ProblemException(409, str(exc))
    return ProblemException(getattr(exc, "status", 400), str(exc))


class ProposalListView(APIView):
    @extend_schema(
        operation_id="proposals_list",
        summary="Proposals, newest first",
        parameters=[OpenApiParameter("state", str, enum=Proposal.State.values)],
        responses={
            200: ProposalSerializer(many=True),
            400: WRITE_PROBLEMS[400],
            401: PROBLEMS[401],
        },
    )
    def get(self, request: Request) -> Response:
        qs = Proposal.objects.all()
        state = request.query_params.get("state")
        if state:
            if state not in Proposal.State.values:
                raise bad_request(f"state must be one of {', '.join(Proposal.State.values)}")
            qs = qs.filter(state=state)
        return Response(ProposalSerializer(qs, many=True).data)

    @extend_schema(
        operation_id="proposals_create",
        summary="Open a proposal (the secretariat, or a member's signatory)",
        parameters=[IDEMPOTENCY],
        request=ProposalCreateSerializer,
        responses={201: ProposalSerializer, **WRITE_PROBLEMS},
    )
    def post(self, request: Request) -> Response:
        body = ProposalCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        d = body.validated_data
        try:
            proposal = proposals.proposal_open(
                actor=request.user, title=d["title"], actions=d["actions"], deadline=d["deadline"],
                rule=d.get("rule"), idempotency_key=request.headers.get("Idempotency-Key"),
            )  # fmt: skip
        except (GovernanceError, LedgerError) as exc:
            raise _refused(exc) from exc
        return Response(ProposalSerializer(proposal).data, status=201)


def _proposal(pk) -> Proposal:
    proposal = Proposal.objects.filter(id=pk).first()
    if proposal is None:
        raise not_found(f"no proposal {pk}")
    return proposal


class ProposalDetailView(APIView):
    @extend_schema(
        operation_id="proposals_retrieve",
        summary="One proposal, with its tally once decided",
        responses={200: ProposalSerializer, 401: PROBLEMS[401], 404: PROBLEMS[404]},
    )
    def get(self, request: Request, pk) -> Response:
        return Response(ProposalSerializer(_proposal(pk)).data)


class VoteView(APIView):
    @extend_schema(
        operation_id="proposals_vote",
        summary="Cast or change your member's vote (a signatory; the member's hosted key signs)",
        description="Members with external keys submit a signed vote.cast to POST /api/v1/ledger/entries.",
        parameters=[IDEMPOTENCY],
        request=VoteCreateSerializer,
        responses={201: VoteSerializer, **WRITE_PROBLEMS},
    )
    def post(self, request: Request, pk) -> Response:
        body = VoteCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            vote = proposals.vote_cast(
                actor=request.user, proposal=_proposal(pk), choice=body.validated_data["choice"],
                idempotency_key=request.headers.get("Idempotency-Key"),
            )  # fmt: skip
        except (GovernanceError, LedgerError) as exc:
            raise _refused(exc) from exc
        return Response(VoteSerializer(vote).data, status=201)
