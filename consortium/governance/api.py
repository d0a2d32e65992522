"""Governance endpoints: members (public to every seat holder), the caller's own seat,
proposals and votes, and seat changes; and how every endpoint calls a service."""

from __future__ import annotations

import base64
import binascii
from contextlib import contextmanager

import django_filters
from django.contrib.auth import get_user_model
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from consortium.governance import member_keys, proposals, seats, selectors, votes
from consortium.governance import members as governance
from consortium.governance.changes import GovernanceError
from consortium.governance.models import ApiToken, Member, Proposal, Seat, Vote
from consortium.web.filters import FilterSet
from consortium.web.idempotency import HEADER, ApiView
from consortium.web.problems import ProblemException, bad_request, not_found
from consortium.web.sessionauth import session_stepup_required
from consortium.web.viewsets import PROBLEMS, WRITE_PROBLEMS, ApiViewSet
from ledger.api.fields import AsciiDateTimeField
from ledger.api.serializers import EmptyBody, KeySerializer, StrictSerializer
from ledger.services import IdempotencyConflict, LedgerError


def refused(exc: GovernanceError | LedgerError) -> ProblemException:
    """A service's refusal as the problem it is (400, 403, 404, 409)."""
    if isinstance(exc, IdempotencyConflict):
        return ProblemException(409, str(exc))
    return ProblemException(getattr(exc, "status", 400), str(exc))


@contextmanager
def refusals():
    """Run a service call, its refusals answered as problems."""
    try:
        yield
    except (GovernanceError, LedgerError) as exc:
        raise refused(exc) from exc


def act(request: Request, service, **kwargs):
    """Call a service as the request's user, with the request's Idempotency-Key; its
    refusals become problems."""
    with refusals():
        return service(actor=request.user, idempotency_key=request.headers.get(HEADER), **kwargs)


def public_key(value: str | None) -> bytes | None:
    """An Ed25519 public key sent as base64 (``None`` when not sent)."""
    if not value:
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise bad_request("public_key must be base64") from exc


# --- members --------------------------------------------------------------------------------


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


class ApplicationSerializer(StrictSerializer):
    code = serializers.CharField(max_length=32)
    kind = serializers.ChoiceField(choices=Member.Kind.choices, default="nation")
    name = serializers.CharField(max_length=200, required=False)
    country = serializers.CharField(max_length=2, required=False)
    figures = serializers.DictField(required=False, help_text="Voting figures, e.g. population.")


class KeyRotationSerializer(StrictSerializer):
    public_key = serializers.CharField(
        required=False,
        help_text="Base64 Ed25519 public key the member holds itself; leave out for a new hosted key.",
    )
    name = serializers.CharField(required=False, max_length=100, default="")


class KeyRevocationSerializer(StrictSerializer):
    reason = serializers.CharField(max_length=300)


@extend_schema_view(
    list=extend_schema(operation_id="members_list", summary="The consortium's members"),
    retrieve=extend_schema(
        operation_id="members_retrieve",
        summary="One member",
        responses={200: MemberSerializer, **PROBLEMS},
    ),
)
class MemberViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    queryset = Member.objects.all()
    serializer_class = MemberSerializer
    ordering = ("code",)
    lookup_field = "code"
    lookup_value_converter = "str"
    not_found = "no member {code}"

    @extend_schema(
        operation_id="members_apply",
        summary="Record an application to join (the secretariat)",
        description="The applicant becomes a member when a proposal with member.admit is accepted.",
        request=ApplicationSerializer,
        responses={201: MemberSerializer, **WRITE_PROBLEMS},
    )
    def create(self, request: Request) -> Response:
        record = {k: v for k, v in self.validated(ApplicationSerializer).items() if v is not None}
        member = act(request, governance.member_apply, record=record)
        return Response(MemberSerializer(member).data, status=201)

    @extend_schema(
        operation_id="members_keys_rotate",
        summary="Rotate your member's hosted key (a signatory; signed by the key it replaces)",
        description=(
            "With public_key, the new key is external: the member signs its own entries "
            "from then on and submits them to POST /api/v1/ledger/entries."
        ),
        request=KeyRotationSerializer,
        responses={201: KeySerializer, **WRITE_PROBLEMS},
    )
    @action(detail=True, methods=["post"], url_path="keys/rotation")
    @session_stepup_required
    def rotate_key(self, request: Request, code: str) -> Response:
        d = self.validated(KeyRotationSerializer)
        key = act(
            request,
            member_keys.member_key_rotate,
            code=code,
            public_key=public_key(d.get("public_key")),
            name=d["name"],
        )
        return Response(KeySerializer(key).data, status=201)

    @extend_schema(
        operation_id="members_keys_revoke",
        summary="Revoke one of your member's keys (a signatory; signed by its hosted key)",
        description="A lost last key is replaced by an accepted proposal (action key.revoke).",
        request=KeyRevocationSerializer,
        responses={200: KeySerializer, **WRITE_PROBLEMS},
    )
    @action(detail=True, methods=["post"], url_path="keys/<str:fingerprint>/revocation")
    @session_stepup_required
    def revoke_key(self, request: Request, code: str, fingerprint: str) -> Response:
        reason = self.validated(KeyRevocationSerializer)["reason"]
        key = act(
            request,
            member_keys.member_key_revoke,
            code=code,
            fingerprint=fingerprint,
            reason=reason,
        )
        return Response(KeySerializer(key).data)


# --- the caller's seat ----------------------------------------------------------------------


class SeatSerializer(serializers.ModelSerializer):
    seat = serializers.UUIDField(source="id")
    member = serializers.CharField(source="member_id", allow_null=True)

    class Meta:
        model = Seat
        fields = ["seat", "member", "role", "assigned_in"]


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
        responses={200: DelegateSelfSerializer, **PROBLEMS},
    )
    def get(self, request: Request) -> Response:
        seat = selectors.seat_of(request.user)
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


class ProposalFilter(FilterSet):
    state = django_filters.ChoiceFilter(choices=Proposal.State.choices)


@extend_schema_view(
    list=extend_schema(operation_id="proposals_list", summary="Proposals, newest first"),
    retrieve=extend_schema(
        operation_id="proposals_retrieve",
        summary="One proposal, with its tally once decided",
        responses={200: ProposalSerializer, **PROBLEMS},
    ),
)
class ProposalViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    queryset = Proposal.objects.all()
    serializer_class = ProposalSerializer
    filterset_class = ProposalFilter
    ordering = ("-opened_in", "id")
    lookup_value_converter = "uuid"
    not_found = "no proposal {pk}"

    @extend_schema(
        operation_id="proposals_create",
        summary="Open a proposal (the secretariat, or a member's signatory)",
        request=ProposalCreateSerializer,
        responses={201: ProposalSerializer, **WRITE_PROBLEMS},
    )
    def create(self, request: Request) -> Response:
        d = self.validated(ProposalCreateSerializer)
        proposal = act(
            request,
            proposals.proposal_open,
            title=d["title"],
            actions=d["actions"],
            deadline=d["deadline"],
            rule=d.get("rule"),
        )
        return Response(ProposalSerializer(proposal).data, status=201)

    @extend_schema(
        operation_id="proposals_withdraw",
        summary="Withdraw an open proposal (the secretariat, or a signatory of the member that opened it)",
        request=None,
        responses={200: ProposalSerializer, **WRITE_PROBLEMS},
    )
    @action(detail=True, methods=["post"], url_path="withdrawal")
    def withdraw(self, request: Request, pk) -> Response:
        self.validated(EmptyBody)
        proposal = act(request, proposals.proposal_withdraw, proposal=self.get_object())
        return Response(ProposalSerializer(proposal).data)

    @extend_schema(
        operation_id="proposals_vote",
        summary="Cast or change your member's vote (a signatory; the member's hosted key signs)",
        description="Members with external keys submit a signed vote.cast to POST /api/v1/ledger/entries.",
        request=VoteCreateSerializer,
        responses={201: VoteSerializer, **WRITE_PROBLEMS},
    )
    @action(detail=True, methods=["post"], url_path="votes")
    @session_stepup_required
    def vote(self, request: Request, pk) -> Response:
        choice = self.validated(VoteCreateSerializer)["choice"]
        vote = act(request, votes.vote_cast, proposal=self.get_object(), choice=choice)
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


class SeatFilter(FilterSet):
    member = django_filters.CharFilter(help_text="Only this member's seats.")


@extend_schema_view(
    list=extend_schema(
        operation_id="seats_list",
        summary="Active seats: every seat for the secretariat and auditors, your member's for a delegate",
    ),
)
class SeatViewSet(mixins.ListModelMixin, ApiViewSet):
    queryset = Seat.objects.select_related("holder__user")
    serializer_class = SeatHeldSerializer
    filterset_class = SeatFilter
    ordering = ("assigned_in", "id")
    lookup_value_converter = "uuid"
    # A seat the caller may not see is not found, whether or not it exists.
    not_found = "no seat {pk}"

    def visible(self, queryset):
        members = self.get_serializer_context()["visible"]
        if members is not None:
            queryset = queryset.filter(member_id__in=members)
        return queryset.filter(vacated_in__isnull=True) if self.action == "list" else queryset

    def get_serializer_context(self) -> dict:
        if not hasattr(self, "_visible"):
            self._visible = selectors.visible_members_of(self.request.user)
        return {**super().get_serializer_context(), "visible": self._visible}

    def _answer(self, seat: Seat, status: int = 200) -> Response:
        seat = Seat.objects.select_related("holder__user").get(id=seat.id)
        return Response(self.get_serializer(seat).data, status=status)

    @extend_schema(
        operation_id="seats_assign",
        summary="Give a user a seat (the secretariat; a member's signatory for its own member)",
        description="The seat is recorded on the ledger (seat.assigned) and the user holds it. "
        "A user holds one seat at a time: vacate the old one first.",
        request=SeatAssignSerializer,
        responses={201: SeatHeldSerializer, **WRITE_PROBLEMS},
    )
    def create(self, request: Request) -> Response:
        d = self.validated(SeatAssignSerializer)
        if selectors.acting_for(request.user) is False:
            raise ProblemException(
                403, "only the secretariat or a member's signatory may assign seats"
            )
        if d["role"] in Seat.MEMBER_ROLES and not d["member"]:
            raise bad_request(f"a {d['role']} seat is a member's: give its member")
        user = get_user_model().objects.filter(username=d["username"]).first()
        if user is None:
            raise bad_request(f"no user {d['username']!r}")
        seat = act(
            request, seats.seat_assign, user=user, role=d["role"], member=d["member"] or None
        )
        return self._answer(seat, status=201)

    @extend_schema(
        operation_id="seats_vacate",
        summary="End a seat (the secretariat; a member's signatory for its own member)",
        description="Records seat.vacated on the ledger; its holder loses the seat, and the "
        "API tokens issued for it stop working. A seat you cannot see is not found.",
        request=SeatVacateSerializer,
        responses={200: SeatHeldSerializer, **WRITE_PROBLEMS},
    )
    @action(detail=True, methods=["post"])
    def vacate(self, request: Request, pk) -> Response:
        reason = self.validated(SeatVacateSerializer)["reason"]
        seat = self.get_object()
        act(request, seats.seat_vacate, seat=seat, reason=reason)
        return self._answer(seat)
