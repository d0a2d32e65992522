from django.urls import path

from ledger.api import views

app_name = "ledger"

urlpatterns = [
    path("checkpoint", views.CheckpointView.as_view(), name="checkpoint"),
    path("entries", views.EntryListView.as_view(), name="entries"),
    path("entries/<int:index>", views.EntryDetailView.as_view(), name="entry"),
    path("proofs/inclusion", views.InclusionProofView.as_view(), name="inclusion-proof"),
    path("proofs/consistency", views.ConsistencyProofView.as_view(), name="consistency-proof"),
    path("keys", views.KeyListView.as_view(), name="keys"),
]
