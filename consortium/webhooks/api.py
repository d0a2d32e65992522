"""``/api/v1/webhooks``: a member's seat holders subscribe its partner systems to the log's
new entries, list and delete their subscriptions, resume a failing one and read its
delivery log."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from consortium.governance.api import refusals
from consortium.web.viewsets import LIST_PROBLEMS, PROBLEMS, WRITE_PROBLEMS, ApiViewSet
from consortium.webhooks import subscriptions
from consortium.webhooks.models import WebhookDelivery, WebhookSubscription
from ledger.api.fields import AsciiIntegerField
from ledger.api.serializers import EmptyBody, StrictSerializer
from ledger.core.envelope import MAX_SAFE_INTEGER


class SubscriptionRequestSerializer(StrictSerializer):
    url = serializers.CharField(
        max_length=2000,
        help_text="Where to POST the events: https (a global address, as for witnesses).",
    )
    kinds = serializers.ListField(
        child=serializers.CharField(max_length=64),
        required=False,
        default=list,
        max_length=subscriptions.MAX_KINDS,
        help_text="Only entries of these kinds (the entries list's `kind`; none: every kind).",
    )
    member = serializers.CharField(
        max_length=64,
        required=False,
        default="",
        allow_blank=True,
        help_text="Only entries signed by this member's keys (the entries list's `member`).",
    )
    after = AsciiIntegerField(
        required=False,
        min_value=-1,
        max_value=MAX_SAFE_INTEGER,
        help_text="Deliver the entries after this index (default: from now; -1: all).",
    )


class SubscriptionSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner_id", allow_null=True)
    deliveries_url = serializers.SerializerMethodField()

    class Meta:
        model = WebhookSubscription
        fields = [
            "id",
            "url",
            "kinds",
            "member",
            "owner",
            "state",
            "cursor",
            "failures",
            "next_attempt_at",
            "created_at",
            "deliveries_url",
        ]

    def get_deliveries_url(self, obj) -> str:
        return f"/api/v1/webhooks/{obj.id}/deliveries"


class DeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "index",
            "event_id",
            "attempt",
            "status_code",
            "error",
            "duration_ms",
            "attempted_at",
            "delivered",
            "next_attempt_at",
        ]


@extend_schema_view(
    list=extend_schema(
        operation_id="webhooks_list",
        summary="Your member's webhook subscriptions",
        responses={200: SubscriptionSerializer(many=True), **LIST_PROBLEMS},
    ),
    retrieve=extend_schema(
        operation_id="webhooks_read",
        summary="A webhook subscription: its cursor and state",
        responses={200: SubscriptionSerializer, **PROBLEMS},
    ),
)
class WebhookSubscriptionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    queryset = WebhookSubscription.objects.all()
    serializer_class = SubscriptionSerializer
    filterset_class = None
    ordering = ("-created_at", "id")
    lookup_value_converter = "uuid"
    # Another member's subscription is not found, whether or not it exists.
    not_found = "no such webhook subscription"

    def visible(self, queryset):
        return queryset & subscriptions.visible(self.request.user)

    @extend_schema(
        operation_id="webhooks_create",
        summary="Subscribe a URL to the log's new entries (signed CloudEvents)",
        description="See docs/events.md: the body, the signature, the retries.",
        request=SubscriptionRequestSerializer,
        responses={201: SubscriptionSerializer, **WRITE_PROBLEMS},
    )
    def create(self, request: Request) -> Response:
        d = self.validated(SubscriptionRequestSerializer)
        with refusals():
            sub = subscriptions.webhook_subscribe(actor=request.user, **d)
        url = f"/api/v1/webhooks/{sub.id}"
        return Response(SubscriptionSerializer(sub).data, status=201, headers={"Location": url})

    @extend_schema(
        operation_id="webhooks_delete",
        summary="Unsubscribe (the delivery log goes with it)",
        responses={204: OpenApiResponse(description="Deleted."), **WRITE_PROBLEMS},
    )
    def destroy(self, request: Request, pk) -> Response:
        self.validated(EmptyBody)  # the body first, as every write: nothing to look up
        sub = self.get_object()
        with refusals():
            subscriptions.webhook_unsubscribe(actor=request.user, subscription=sub)
        return Response(status=204)

    @extend_schema(
        operation_id="webhooks_resume",
        summary="Resume a subscription marked failing, from its cursor",
        request=EmptyBody,
        responses={200: SubscriptionSerializer, **WRITE_PROBLEMS},
    )
    @action(detail=True, methods=["post"])
    def resume(self, request: Request, pk) -> Response:
        self.validated(EmptyBody)
        sub = self.get_object()
        with refusals():
            sub = subscriptions.webhook_resume(actor=request.user, subscription=sub)
        return Response(SubscriptionSerializer(sub).data)

    @extend_schema(
        operation_id="webhooks_deliveries",
        summary="The subscription's delivery log: every attempt, newest first",
        responses={200: DeliverySerializer(many=True), **PROBLEMS},
    )
    @action(detail=True, methods=["get"], serializer_class=DeliverySerializer)
    def deliveries(self, request: Request, pk) -> Response:
        sub = self.get_object()
        self.ordering = ("-id",)
        page = self.paginate_queryset(WebhookDelivery.objects.filter(subscription=sub))
        return self.get_paginated_response(DeliverySerializer(page, many=True).data)
