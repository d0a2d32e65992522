"""Governance endpoints: members (public to every seat holder), the caller's own seat,
proposals and votes, and seat changes."""

from __future__ import annotations

import base64
import binascii

from django.contrib.auth import get_user_model
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from consortium.governance import members as governance
from consortium.governance import proposals
from consortium.governance.members import GovernanceError
from consortium.governance.models import ApiToken, Member, Proposal, Seat, Vote
from consortium.web.idempotency import ApiView
from consortium.web.problems import ProblemException, bad_request, not_found
from ledger.api.fields import AsciiDateTimeField
from ledger.api.serializers import EmptyBody, KeySerializer, ProblemSerializer, StrictSerializer
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


IDEMPOTENCY = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    required=False,
    description="Makes a retry safe: the same key returns what the first request did.",
)
WRITE_PROBLEMS = {
    400: OpenApiResponse(ProblemSerializer, description="Bad request (problem+json)."),
    401: PROBLEMS[401],
    403: OpenApiResponse(ProblemSerializer, description="Not allowed (problem+json)."),
    404: PROBLEMS[404],
    409: OpenApiResponse(ProblemSerializer, description="Conflict (problem+json)."),
    413: OpenApiResponse(ProblemSerializer, description="Body too large (problem+json)."),
}


def _refused(exc) -> ProblemException:
    if isinstance(exc, IdempotencyConflict):
        return ProblemException(409, str(exc))
    return ProblemException(getattr(exc, "status", 400), str(exc))


def act(request: Request, service, **kwargs):
    """Call a governance service as the request's user, with the request's
    Idempotency-Key; its refusals become problems (400, 403, 404, 409)."""
    try:
        return service(
            actor=request.user, idempotency_key=request.headers.get("Idempotency-Key"), **kwargs
        )
    except (GovernanceError, LedgerError) as exc:
        raise _refused(exc) from exc


class ApplicationSerializer(StrictSerializer):
    code = serializers.CharField(max_length=32)
    kind = serializers.ChoiceField(choices=Member.Kind.choices, default="nation")
    name = serializers.CharField(max_length=200, required=False)
    country = serializers.CharField(max_length=2, required=False)
    figures = serializers.DictField(required=False, help_text="Voting figures, e.g. population.")


class MemberListView(ApiView):
    @extend_schema(
        operation_id="members_list",
        summary="The consortium's members",
        responses={200: MemberSerializer(many=True), 401: PROBLEMS[401]},
    )
    def get(self, request: Request) -> Response:
        return Response(MemberSerializer(Member.objects.order_by("code"), many=True).data)

    @extend_schema(
        operation_id="members_apply",
        summary="Record an application to join (the secretariat)",
        description="The applicant becomes a member when a proposal with member.admit is accepted.",
        parameters=[IDEMPOTENCY],
        request=ApplicationSerializer,
        responses={201: MemberSerializer, **WRITE_PROBLEMS},
    )
    def post(self, request: Request) -> Response:
        body = ApplicationSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        record = {k: v for k, v in body.validated_data.items() if v is not None}
        member = act(request, governance.member_apply, record=record)
        return Response(MemberSerializer(member).data, status=201)


class MemberDetailView(ApiView):
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


class TokenInfoSerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiToken
        fields = ["key_id", "expires_at"]


class DelegateSelfSerializer(SeatSerializer):
    token = serializers.SerializerMethodField(
        help_text="The bearer token this request came with (null for a session)."
    )

    class Meta(SeatSerializer.Meta):
        fields = [*SeatSerializer.Meta.fields, "token"]

    @extend_schema_field(TokenInfoSerializer(allow_null=True))
    def get_token(self, seat) -> dict | None:
        auth = self.context["request"].auth
        return TokenInfoSerializer(auth).data if isinstance(auth, ApiToken) else None


class SelfSeatView(ApiView):
    @extend_schema(
        operation_id="delegates_self",
        summary="The caller's seat: member and role (and the token used, if any)",
        responses={200: DelegateSelfSerializer, 401: PROBLEMS[401], 404: PROBLEMS[404]},
    )
    def get(self, request: Request) -> Response:
        seat = governance.seat_of(request.user)
        if seat is None:
            raise not_found("you hold no seat")
        return Response(DelegateSelfSerializer(seat, context={"request": request}).data)


# --- proposals and votes -------------------------------------------------------------------


class ProposalSerializer(serializers.ModelSerializer):
    class Meta:
        model = Proposal
        fields = [
            "id",
            "title",
            "actions",
            "rule_name",
            "rule",
            "eligible",
            "deadline",
            "state",
            "tally",
            "opened_in",
            "closed_in",
        ]


class ProposalCreateSerializer(StrictSerializer):
    title = serializers.CharField(max_length=300)
    actions = serializers.ListField(child=serializers.DictField(), min_length=1)
    deadline = AsciiDateTimeField(help_text="RFC 3339; in the future.")
    rule = serializers.CharField(
        required=False, help_text="A voting rule's name (default: the rules' default)."
    )


class VoteCreateSerializer(StrictSerializer):
    choice = serializers.ChoiceField(choices=["yes", "no", "abstain"])


class VoteSerializer(serializers.ModelSerializer):
    member = serializers.CharField(source="member_id")

    class Meta:
        model = Vote
        fields = ["member", "choice", "cast_in", "cast_at"]


class ProposalListView(ApiView):
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
        proposal = act(
            request,
            proposals.proposal_open,
            title=d["title"],
            actions=d["actions"],
            deadline=d["deadline"],
            rule=d.get("rule"),
        )
        return Response(ProposalSerializer(proposal).data, status=201)


def _proposal(pk) -> Proposal:
    proposal = Proposal.objects.filter(id=pk).first()
    if proposal is None:
        raise not_found(f"no proposal {pk}")
    return proposal


class ProposalWithdrawalView(ApiView):
    @extend_schema(
        operation_id="proposals_withdraw",
        summary="Withdraw an open proposal (the secretariat, or a signatory of the member that opened it)",
        parameters=[IDEMPOTENCY],
        request=None,
        responses={200: ProposalSerializer, **WRITE_PROBLEMS},
    )
    def post(self, request: Request, pk) -> Response:
        EmptyBody(data=request.data).is_valid(raise_exception=True)
        proposal = act(request, proposals.proposal_withdraw, proposal=_proposal(pk))
        return Response(ProposalSerializer(proposal).data)


class ProposalDetailView(ApiView):
    @extend_schema(
        operation_id="proposals_retrieve",
        summary="One proposal, with its tally once decided",
        responses={200: ProposalSerializer, 401: PROBLEMS[401], 404: PROBLEMS[404]},
    )
    def get(self, request: Request, pk) -> Response:
        return Response(ProposalSerializer(_proposal(pk)).data)


class VoteView(ApiView):
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
        vote = act(
            request,
            proposals.vote_cast,
            proposal=_proposal(pk),
            choice=body.validated_data["choice"],
        )
        return Response(VoteSerializer(vote).data, status=201)


# --- seats ---------------------------------------------------------------------------------


class SeatHeldSerializer(SeatSerializer):
    vacated_in = serializers.IntegerField(allow_null=True, read_only=True)
    holder = serializers.SerializerMethodField(
        help_text="The holder's username (local account data, never on the ledger); "
        "null when no one holds the seat."
    )

    class Meta(SeatSerializer.Meta):
        fields = [*SeatSerializer.Meta.fields, "vacated_in", "holder"]

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_holder(self, seat: Seat) -> str | None:
        # Only for a seat the caller may see (the views list no other).
        visible = self.context["visible"]
        if visible is not None and seat.member_id not in visible:
            return None
        holder = getattr(seat, "holder", None)
        return holder.user.get_username() if holder is not None else None


class SeatAssignSerializer(StrictSerializer):
    username = serializers.CharField(max_length=150, help_text="The user who will hold the seat.")
    role = serializers.ChoiceField(choices=Seat.Role.choices)
    member = serializers.CharField(
        required=False,
        allow_null=True,
        default=None,
        help_text="The member's code; omit or null for a consortium-wide role.",
    )


class SeatVacateSerializer(StrictSerializer):
    reason = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=300,
        help_text="Recorded on the ledger with the vacancy.",
    )


def _seats_context(request: Request) -> dict:
    return {"visible": governance.visible_members_of(request.user)}


def _seat(request: Request, pk) -> Seat:
    """A seat the caller may see; any other is not found, whether or not it exists."""
    seat = Seat.objects.select_related("holder__user").filter(id=pk).first()
    visible = governance.visible_members_of(request.user)
    if seat is None or (visible is not None and seat.member_id not in visible):
        raise not_found(f"no seat {pk}")
    return seat


class SeatListView(ApiView):
    @extend_schema(
        operation_id="seats_list",
        summary="Active seats: every seat for the secretariat and auditors, your member's for a delegate",
        parameters=[OpenApiParameter("member", str, description="Only this member's seats.")],
        responses={200: SeatHeldSerializer(many=True), 401: PROBLEMS[401]},
    )
    def get(self, request: Request) -> Response:
        context = _seats_context(request)
        qs = Seat.objects.filter(vacated_in__isnull=True).select_related("holder__user")
        if context["visible"] is not None:
            qs = qs.filter(member_id__in=context["visible"])
        member = request.query_params.get("member")
        if member:
            qs = qs.filter(member_id=member)
        return Response(SeatHeldSerializer(qs, many=True, context=context).data)

    @extend_schema(
        operation_id="seats_assign",
        summary="Give a user a seat (the secretariat; a member's signatory for its own member)",
        description="The seat is recorded on the ledger (seat.assigned) and the user holds it. "
        "A user holds one seat at a time: vacate the old one first.",
        parameters=[IDEMPOTENCY],
        request=SeatAssignSerializer,
        responses={201: SeatHeldSerializer, **WRITE_PROBLEMS},
    )
    def post(self, request: Request) -> Response:
        body = SeatAssignSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        if governance.acting_for(request.user) is False:
            raise ProblemException(
                403, "only the secretariat or a member's signatory may assign seats"
            )
        d = body.validated_data
        if d["role"] in Seat.MEMBER_ROLES and not d["member"]:
            raise bad_request(f"a {d['role']} seat is a member's: give its member")
        user = get_user_model().objects.filter(username=d["username"]).first()
        if user is None:
            raise bad_request(f"no user {d['username']!r}")
        seat = act(
            request, governance.seat_assign, user=user, role=d["role"], member=d["member"] or None
        )
        seat = Seat.objects.select_related("holder__user").get(id=seat.id)
        return Response(SeatHeldSerializer(seat, context=_seats_context(request)).data, status=201)


class SeatVacateView(ApiView):
    @extend_schema(
        operation_id="seats_vacate",
        summary="End a seat (the secretariat; a member's signatory for its own member)",
        description="Records seat.vacated on the ledger; its holder loses the seat, and the "
        "API tokens issued for it stop working. A seat you cannot see is not found.",
        parameters=[IDEMPOTENCY],
        request=SeatVacateSerializer,
        responses={200: SeatHeldSerializer, **WRITE_PROBLEMS},
    )
    def post(self, request: Request, pk) -> Response:
        body = SeatVacateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        seat = _seat(request, pk)
        act(request, governance.seat_vacate, seat=seat, reason=body.validated_data["reason"])
        seat = Seat.objects.select_related("holder__user").get(id=seat.id)
        return Response(SeatHeldSerializer(seat, context=_seats_context(request)).data)


# --- a member's keys ---------------------------------------------------------------------------


class KeyRotationSerializer(StrictSerializer):
    public_key = serializers.CharField(
        required=False,
        help_text="Base64 Ed25519 public key the member holds itself; leave out for a new hosted key.",
    )
    name = serializers.CharField(required=False, max_length=100, default="")


class KeyRevocationSerializer(StrictSerializer):
    reason = serializers.CharField(max_length=300)


class MemberKeyRotationView(ApiView):
    @extend_schema(
        operation_id="members_keys_rotate",
        summary="Rotate your member's hosted key (a signatory; signed by the key it replaces)",
        description=(
            "With public_key, the new key is external: the member signs its own entries "
            "from then on and submits them to POST /api/v1/ledger/entries."
        ),
        parameters=[IDEMPOTENCY],
        request=KeyRotationSerializer,
        responses={201: KeySerializer, **WRITE_PROBLEMS},
    )
    def post(self, request: Request, code: str) -> Response:
        body = KeyRotationSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        raw = None
        if body.validated_data.get("public_key"):
            try:
                raw = base64.b64decode(body.validated_data["public_key"], validate=True)
            except (binascii.Error, ValueError) as exc:
                raise bad_request("public_key must be base64") from exc
        key = act(
            request,
            governance.member_key_rotate,
            code=code,
            public_key=raw,
            name=body.validated_data["name"],
        )
        return Response(KeySerializer(key).data, status=201)


class MemberKeyRevocationView(ApiView):
    @extend_schema(
        operation_id="members_keys_revoke",
        summary="Revoke one of your member's keys (a signatory; signed by its hosted key)",
        description="A lost last key is replaced by an accepted proposal (action key.revoke).",
        parameters=[IDEMPOTENCY],
        request=KeyRevocationSerializer,
        responses={200: KeySerializer, **WRITE_PROBLEMS},
    )
    def post(self, request: Request, code: str, fingerprint: str) -> Response:
        body = KeyRevocationSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        key = act(
            request,
            governance.member_key_revoke,
            code=code,
            fingerprint=fingerprint,
            reason=body.validated_data["reason"],
        )
        return Response(KeySerializer(key).data)
