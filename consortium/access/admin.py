"""Models, checkpoints and downloads in the admin."""

from django.conf import settings
from django.contrib import admin, messages
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from consortium.access import downloads, selectors
from consortium.access.models import (
    DownloadAuthorization,
    DownloadEvent,
    ModelCheckpoint,
    TrainedModel,
    TrainingRun,
)
from consortium.governance.admin import SeatVisible
from consortium.governance.changes import refusals
from consortium.governance.selectors import recording_for
from consortium.governance.terms import ACCESS_SCOPES
from consortium.web.stepup import stepup_required
from ledger.display import time_column
from ledger.services import parse_time

# --- models and checkpoints ---------------------------------------------------------------------


@admin.register(TrainedModel)
class TrainedModelAdmin(SeatVisible):
    list_display = ["code", "name", "agreement", "registered_in"]
    readonly_fields = ["code", "name", "agreement", "registered_in"]


@admin.register(TrainingRun)
class TrainingRunAdmin(SeatVisible):
    list_display = ["name", "model", "recorded_in"]
    readonly_fields = ["id", "model", "name", "datasets", "compute", "recorded_in"]


@admin.register(ModelCheckpoint)
class ModelCheckpointAdmin(SeatVisible):
    """Checkpoints; each one's access page answers, per scope, whether the delegate's
    member may download it and why, and lets a recorder or signatory ask for it."""

    list_display = ["name", "model", "state", "size", "published_in", "access_link"]
    list_filter = ["state", "model"]
    readonly_fields = [
        "digest",
        "model",
        "name",
        "run",
        "files",
        "size",
        "state",
        "published_in",
        "blocked_in",
        "blocked_reason",
        "access_link",
    ]

    def get_urls(self):
        view = self.admin_site.admin_view(self.access_view)
        return [
            path("<str:digest>/access/", view, name="consortium_modelcheckpoint_access"),
            *super().get_urls(),
        ]

    @admin.display(description=gettext_lazy("access"))
    def access_link(self, obj):
        url = reverse("admin:consortium_modelcheckpoint_access", args=[obj.digest])
        return format_html('<a href="{}">{}</a>', url, _("who may download it, and why"))

    def access_view(self, request, digest):
        checkpoint = selectors.checkpoint_of(digest)
        if checkpoint is None or not self.has_view_permission(request):
            raise Http404("no such checkpoint")
        if request.method == "POST":
            return self.ask_view(request, checkpoint)
        return self.access_page(request, checkpoint)

    @stepup_required
    def ask_view(self, request, checkpoint):
        """Ask to download (binds the member: a recent second factor first)."""
        issued = None
        with refusals(lambda message: self.message_user(request, message, messages.ERROR)):
            auth, token = downloads.download_authorize(
                actor=request.user,
                checkpoint=checkpoint,
                request=request,
                scope=request.POST.get("scope", "full_weights"),
            )
            base = settings.SITE_URL
            issued = {
                "token": token,
                "auth": auth,
                "expires_at": parse_time(auth.expires),
                "urls": [
                    (
                        p,
                        reverse("download", args=[token, p]),
                        f"{base}{reverse('download', args=[token, p])}",
                    )
                    for p in auth.files
                ],
            }
        return self.access_page(request, checkpoint, issued)

    def access_page(self, request, checkpoint, issued=None):
        rows = selectors.access_table(request.user, checkpoint)
        context = {
            **self.admin_site.each_context(request),
            "checkpoint": checkpoint,
            "rows": rows,
            "issued": issued,
            "scopes": ACCESS_SCOPES,
            "opts": self.model._meta,
            "can_ask": recording_for(request.user) is not None,
            "title": _("Access to %(checkpoint)s") % {"checkpoint": checkpoint},
        }
        return TemplateResponse(request, "admin/consortium/modelcheckpoint/access.html", context)


@admin.register(DownloadAuthorization)
class DownloadAuthorizationAdmin(SeatVisible):
    list_display = ["authorized_in", "member", "checkpoint", "scope", "rule", "expires_shown"]
    list_filter = ["scope", "member"]
    readonly_fields = [
        "token_id",
        "member",
        "seat",
        "checkpoint",
        "scope",
        "files",
        "rule",
        "figures",
        "expires_shown",
        "authorized_in",
    ]
    expires_shown = time_column("expires", gettext_lazy("expires"))
    exclude = ["expires"]  # shown as expires_shown

    def get_queryset(self, request):
        return selectors.visible_authorizations(request.user, super().get_queryset(request))


@admin.register(DownloadEvent)
class DownloadEventAdmin(SeatVisible):
    """The access log: a delegate sees its own member's lines; auditors see all."""

    list_display = [
        "at",
        "member",
        "username",
        "outcome",
        "path",
        "reason",
        "bytes_served",
        "remote_addr",
    ]
    list_filter = ["outcome", "member"]
    date_hierarchy = "at"
    readonly_fields = [
        "at",
        "member",
        "username",
        "checkpoint",
        "path",
        "outcome",
        "reason",
        "token_id",
        "remote_addr",
        "bytes_served",
    ]

    def get_queryset(self, request):
        return selectors.visible_access_log(request.user, super().get_queryset(request))
