from django.urls import include, path
from rest_framework.routers import SimpleRouter

from ledger.api import tiles, views, witnesses
from ledger.events.sse import EventsView

app_name = "ledger"

# No trailing slash, and each lookup through its viewset's path converter.
router = SimpleRouter(trailing_slash=False, use_regex_path=False)
router.register("entries", views.EntryViewSet)
router.register("keys", views.KeyViewSet)
router.register("witnesses/alarms", witnesses.WitnessAlarmViewSet, basename="witness-alarm")
router.register("witnesses", witnesses.WitnessViewSet, basename="witness")

urlpatterns = [
    path("checkpoint", witnesses.CosignedCheckpointView.as_view(), name="checkpoint"),
    path("checkpoint/latest", views.CheckpointView.as_view(), name="checkpoint-latest"),
    path(
        "witnesses/alarms/count",
        witnesses.WitnessAlarmCountView.as_view(),
        name="witness-alarm-count",
    ),
    path("proofs/inclusion", views.InclusionProofView.as_view(), name="inclusion-proof"),
    path("proofs/consistency", views.ConsistencyProofView.as_view(), name="consistency-proof"),
    path("tlog/checkpoint", tiles.TlogCheckpointView.as_view(), name="tlog-checkpoint"),
    path("tlog/tile/<path:path>", tiles.TileView.as_view(), name="tlog-tile"),
    path("reader", tiles.ReaderView.as_view(), name="reader"),
    # The new entries as Server-Sent Events (docs/events.md).
    path("events", EventsView.as_view(), name="events"),
    path("", include(router.urls)),
]
