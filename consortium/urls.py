from django.contrib import admin
from django.urls import include, path
from django.utils.translation import gettext_lazy
from django.views import defaults
from django.views.generic import RedirectView
from django.views.i18n import JavaScriptCatalog
from django_otp_webauthn import views as webauthn_views
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from consortium.access import api as access_api
from consortium.audit import api as audit_api
from consortium.governance import agreements_api, api, witnesses_api
from consortium.web import problems, security_views, signin
from consortium.web.viewsets import ApiRouter
from consortium.webhooks import api as webhooks_api
from contributions import admin as contributions_admin

router = ApiRouter()
router.register("members", api.MemberViewSet)
router.register("proposals", api.ProposalViewSet)
router.register("seats", api.SeatViewSet, basename="seat")
router.register("documents", agreements_api.DocumentViewSet, basename="document")
router.register("agreements", agreements_api.AgreementViewSet, basename="agreement")
router.register("models", access_api.TrainedModelViewSet)
router.register("training-runs", access_api.TrainingRunViewSet)
router.register("checkpoints", access_api.CheckpointViewSet)
router.register("access/log", access_api.AccessLogViewSet, basename="access-log")
router.register("audit/exports", audit_api.AuditExportViewSet, basename="audit-export")
# Partner systems' webhook subscriptions (docs/events.md).
router.register("webhooks", webhooks_api.WebhookSubscriptionViewSet, basename="webhook")

# The passkey endpoints (django-otp-webauthn's, under its namespace for its template
# tags), the completing ones recording the second factor for the step-up.
webauthn_urls = (
    [
        path(
            "registration/begin/",
            webauthn_views.BeginCredentialRegistrationView.as_view(),
            name="credential-registration-begin",
        ),
        path(
            "registration/complete/",
            signin.PasskeyRegistrationComplete.as_view(),
            name="credential-registration-complete",
        ),
        path(
            "authentication/begin/",
            webauthn_views.BeginCredentialAuthenticationView.as_view(),
            name="credential-authentication-begin",
        ),
        path(
            "authentication/complete/",
            signin.PasskeyAuthenticationComplete.as_view(),
            name="credential-authentication-complete",
        ),
        path(
            "jsi18n/",
            JavaScriptCatalog.as_view(packages=["django_otp_webauthn"]),
            name="js-i18n-catalog",
        ),
    ],
    "otp_webauthn",
)

# Signing in and the person's own security page (docs/security.md): before the admin's
# own URLs, under /admin/ so that its session and look apply.
security_urls = [
    path("admin/security/", security_views.security, name="security"),
    path("admin/security/codes/", security_views.new_codes, name="security-new-codes"),
    path(
        "admin/security/codes/regenerate/",
        security_views.regenerate_codes,
        name="security-regenerate-codes",
    ),
    path(
        "admin/security/devices/<path:device_id>/remove/",
        security_views.remove_device,
        name="security-remove-device",
    ),
    path("admin/security/step-up/", security_views.step_up, name="stepup"),
    path("admin/security/signin/verify/", security_views.verify, name="signin-verify"),
    path("admin/security/signin/enrol/", security_views.enrol, name="signin-enrol"),
    path(
        "admin/security/signin/enrol/totp/",
        security_views.enrol_totp,
        name="signin-enrol-totp",
    ),
    path("admin/security/webauthn/", include(webauthn_urls)),
]

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    *security_urls,
    path(
        "admin/consortium/cost-shares/",
        admin.site.admin_view(contributions_admin.cost_share_index_view),
        name="contributions_cost_share_index",
    ),
    path(
        "admin/consortium/agreement/<uuid:pk>/cost-shares/",
        admin.site.admin_view(contributions_admin.cost_share_view),
        name="contributions_cost_shares",
    ),
    path("admin/", admin.site.urls),
    # POST /i18n/setlang/: the language chosen in the admin's header.
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/v1/ledger/", include("ledger.api.urls")),
    path("api/v1/delegates/self", api.SelfSeatView.as_view(), name="delegate-self"),
    path(
        "api/v1/witnesses",
        witnesses_api.WitnessRegistrationView.as_view(),
        name="witness-registration",
    ),
    path(
        "api/v1/witnesses/retirement",
        witnesses_api.WitnessRetirementView.as_view(),
        name="witness-retirement",
    ),
    path("api/v1/access/check", access_api.AccessCheckView.as_view(), name="access-check"),
    path(
        "api/v1/downloads/<str:token>/<path:path>",
        access_api.DownloadView.as_view(),
        name="download",
    ),
    path("api/v1/", include(router.urls)),
    path("api/v1/", include("contributions.urls")),
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves its start-up script as a file: the CSP allows no inline script.
    path("api/v1/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="swagger-ui"),
]

admin.site.site_header = gettext_lazy("Consortium ledger")
admin.site.site_title = gettext_lazy("Consortium ledger")
admin.site.index_title = gettext_lazy("System of record")


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
