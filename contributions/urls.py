from django.urls import path

from contributions import api

urlpatterns = [
    path("facilities", api.FacilityListView.as_view(), name="facilities"),
    path("facilities/<str:code>", api.FacilityDetailView.as_view(), name="facility"),
    path(
        "facilities/<str:code>/changes", api.FacilityChangesView.as_view(), name="facility-changes"
    ),
    path("facilities/<str:code>/imports", api.ImportView.as_view(), name="facility-imports"),
    path("imports", api.ImportListView.as_view(), name="imports"),
    path("imports/<uuid:pk>/attestation", api.AttestationView.as_view(), name="import-attestation"),
    path("contributions", api.ContributionListView.as_view(), name="contributions"),
    path("contributions/data", api.DataContributionView.as_view(), name="contributions-data"),
    path("contributions/funds", api.FundsContributionView.as_view(), name="contributions-funds"),
    path(
        "contributions/<uuid:pk>/disputes", api.DisputeView.as_view(), name="contribution-disputes"
    ),
    path(
        "contributions/<uuid:pk>/confirmation",
        api.ConfirmationView.as_view(),
        name="contribution-confirmation",
    ),
    path("disputes/<uuid:pk>/resolution", api.ResolutionView.as_view(), name="dispute-resolution"),
    path("valuation-tables", api.ValuationTableListView.as_view(), name="valuation-tables"),
    path("agreements/<uuid:pk>/cost-shares", api.CostShareView.as_view(), name="cost-shares"),
]
