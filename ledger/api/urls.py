from django.urls import include, path
from rest_framework.routers import SimpleRouter

from ledger.api import tiles, views

app_name = "ledger"

# No trailing slash, and each lookup through its viewset's path converter.
router = SimpleRouter(trailing_slash=False, use_regex_path=False)
router.register("entries", views.EntryViewSet)
router.register("keys", views.KeyViewSet)

urlpatterns = [
    path("checkpoint", views.CheckpointView.as_view(), name="checkpoint"),
    path("proofs/inclusion", views.InclusionProofView.as_view(), name="inclusion-proof"),
    path("proofs/consistency", views.ConsistencyProofView.as_view(), name="consistency-proof"),
    path("tlog/checkpoint", tiles.TlogCheckpointView.as_view(), name="tlog-checkpoint"),
    path("tlog/tile/<path:path>", tiles.TileView.as_view(), name="tlog-tile"),
    path("reader", tiles.ReaderView.as_view(), name="reader"),
    path("", include(router.urls)),
]
