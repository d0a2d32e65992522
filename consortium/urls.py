from django.contrib import admin
from django.urls import include, path
from django.views import defaults
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from consortium.access import api as checkpoints_api
from consortium.audit import api as audit_api
from consortium.governance import agreements_api, api
from consortium.web import problems
from contributions import admin as contributions_admin

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path(
        "admin/consortium/agreement/<uuid:pk>/cost-shares/",
        admin.site.admin_view(contributions_admin.cost_share_view),
        name="contributions_cost_shares",
    ),
    path("admin/", admin.site.urls),
    path("api/v1/ledger/", include("ledger.api.urls")),
    path("api/v1/members", api.MemberListView.as_view(), name="members"),
    path("api/v1/members/<str:code>", api.MemberDetailView.as_view(), name="member"),
    path(
        "api/v1/members/<str:code>/keys/rotation",
        api.MemberKeyRotationView.as_view(),
        name="member-key-rotation",
    ),
    path(
        "api/v1/members/<str:code>/keys/<str:fingerprint>/revocation",
        api.MemberKeyRevocationView.as_view(),
        name="member-key-revocation",
    ),
    path("api/v1/delegates/self", api.SelfSeatView.as_view(), name="delegate-self"),
    path("api/v1/proposals", api.ProposalListView.as_view(), name="proposals"),
    path("api/v1/proposals/<uuid:pk>", api.ProposalDetailView.as_view(), name="proposal"),
    path("api/v1/proposals/<uuid:pk>/votes", api.VoteView.as_view(), name="proposal-votes"),
    path(
        "api/v1/proposals/<uuid:pk>/withdrawal",
        api.ProposalWithdrawalView.as_view(),
        name="proposal-withdrawal",
    ),
    path("api/v1/seats", api.SeatListView.as_view(), name="seats"),
    path("api/v1/seats/<uuid:pk>/vacate", api.SeatVacateView.as_view(), name="seat-vacate"),
    path("api/v1/documents", agreements_api.DocumentUploadView.as_view(), name="documents"),
    path(
        "api/v1/documents/<str:sha256>",
        agreements_api.DocumentDownloadView.as_view(),
        name="document",
    ),
    path("api/v1/agreements", agreements_api.AgreementListView.as_view(), name="agreements"),
    path(
        "api/v1/agreements/<uuid:pk>",
        agreements_api.AgreementDetailView.as_view(),
        name="agreement",
    ),
    path(
        "api/v1/agreements/<uuid:pk>/signatures",
        agreements_api.SignatureView.as_view(),
        name="agreement-signatures",
    ),
    path(
        "api/v1/agreements/<uuid:pk>/withdrawal",
        agreements_api.WithdrawalView.as_view(),
        name="agreement-withdrawal",
    ),
    path(
        "api/v1/agreements/<uuid:pk>/termination",
        agreements_api.TerminationView.as_view(),
        name="agreement-termination",
    ),
    path("api/v1/models", checkpoints_api.ModelListView.as_view(), name="models"),
    path(
        "api/v1/training-runs", checkpoints_api.TrainingRunListView.as_view(), name="training-runs"
    ),
    path("api/v1/checkpoints", checkpoints_api.CheckpointListView.as_view(), name="checkpoints"),
    path(
        "api/v1/checkpoints/<str:digest>",
        checkpoints_api.CheckpointDetailView.as_view(),
        name="checkpoint",
    ),
    path(
        "api/v1/checkpoints/<str:digest>/bundle",
        checkpoints_api.BundleView.as_view(),
        name="checkpoint-bundle",
    ),
    path("api/v1/access/check", checkpoints_api.AccessCheckView.as_view(), name="access-check"),
    path("api/v1/access/log", checkpoints_api.AccessLogView.as_view(), name="access-log"),
    path(
        "api/v1/checkpoints/<str:digest>/downloads",
        checkpoints_api.DownloadRequestView.as_view(),
        name="checkpoint-downloads",
    ),
    path(
        "api/v1/downloads/<str:token>/<path:path>",
        checkpoints_api.DownloadView.as_view(),
        name="download",
    ),
    path("api/v1/audit/exports", audit_api.AuditExportListView.as_view(), name="audit-exports"),
    path(
        "api/v1/audit/exports/<uuid:pk>", audit_api.AuditExportView.as_view(), name="audit-export"
    ),
    path(
        "api/v1/audit/exports/<uuid:pk>/file",
        audit_api.AuditExportFileView.as_view(),
        name="audit-export-file",
    ),
    path("api/v1/", include("contributions.urls")),
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/v1/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
]

admin.site.site_header = "Consortium ledger"
admin.site.site_title = "Consortium ledger"
admin.site.index_title = "System of record"


def handler400(request, exception):
    if request.path.startswith("/api/"):
        return problems.api_bad_request(request, exception)
    return defaults.bad_request(request, exception)


def handler404(request, exception):
    if request.path.startswith("/api/"):
        return problems.api_not_found(request, exception)
    return defaults.page_not_found(request, exception)


def handler500(request):
    if request.path.startswith("/api/"):
        return problems.api_server_error(request)
    return defaults.server_error(request)
