from django.urls import path

from consortium.web.viewsets import ApiRouter
from contributions import api

router = ApiRouter()
router.register("facilities", api.FacilityViewSet)
router.register("imports", api.ImportViewSet)
router.register("contributions", api.ContributionViewSet, basename="contribution")
router.register("disputes", api.DisputeViewSet)
router.register("valuation-tables", api.ValuationTableViewSet)

urlpatterns = [
    *router.urls,
    path("agreements/<uuid:pk>/cost-shares", api.CostShareView.as_view(), name="cost-shares"),
]
