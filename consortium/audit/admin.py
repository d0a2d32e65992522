"""Audit exports in the admin: asked for, followed and fetched."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from consortium.audit import exports as audit
from consortium.audit import selectors
from consortium.audit.figures.common import VERIFY_COMMAND
from consortium.audit.models import AuditExport
from consortium.governance.admin import SeatVisible
from consortium.governance.changes import GovernanceError, refusals
from consortium.governance.models import Member
from consortium.web import storage
from consortium.web.formfields import AsciiDateField
from ledger.services import log_signer, verifier_key

# --- audit exports -------------------------------------------------------------------------


class AuditExportForm(forms.Form):
    member = forms.ChoiceField(required=False, help_text=_("Only what concerns this member."))
    date_from = AsciiDateField(
        required=False, label=_("From (UTC day)"), widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = AsciiDateField(
        required=False, label=_("To (UTC day)"), widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args, members, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["member"].choices = members


@admin.register(AuditExport)
class AuditExportAdmin(SeatVisible):
    """Exports the user may read: its member's for a delegate, all for auditors and the
    secretariat. Asking for one goes through ``audit.audit_export_request``."""

    list_display = [
        "created_at",
        "scope",
        "period",
        "status",
        "progress_bar",
        "entries",
        "size",
        "download",
        "requester",
    ]
    list_filter = ["status", "member"]
    readonly_fields = [
        "id",
        "status",
        "step",
        "progress_bar",
        "member",
        "date_from",
        "date_to",
        "first",
        "end",
        "range_first",
        "range_end",
        "anchor",
        "entries",
        "size",
        "bundle_sha256",
        "manifest_sha256",
        "recorded_in",
        "download",
        "error",
        "requester",
        "created_at",
        "started_at",
        "finished_at",
        "verify_with",
    ]
    fields = readonly_fields

    def get_queryset(self, request):
        return selectors.visible_exports(request.user)

    def has_view_permission(self, request, obj=None):
        if not super().has_view_permission(request, obj):
            return False
        return obj is None or selectors.may_read(request.user, obj)

    @admin.display(description=_("scope"))
    def scope(self, obj):
        return obj.member_id or _("everything")

    @admin.display(description=_("period or range"))
    def period(self, obj):
        if obj.date_from or obj.date_to:
            return _("%(start)s to %(end)s") % {
                "start": obj.date_from or "…",
                "end": obj.date_to or "…",
            }
        if obj.range_first is not None:
            return _("entries %(first)s-%(last)s") % {
                "first": f"{obj.range_first:,}",
                "last": f"{obj.range_end - 1:,}",
            }
        return _("all")

    @admin.display(description=_("progress"))
    def progress_bar(self, obj):
        # An unfinished export's bar follows its row (consortium/progress.js polls the
        # progress view every second) and shows the file's link when it is done.
        following = obj.status in (AuditExport.Status.QUEUED, AuditExport.Status.RUNNING)
        url = reverse("admin:consortium_auditexport_progress", args=[obj.pk]) if following else ""
        return format_html(
            '<span class="progress" data-progress-url="{}">'
            '<progress max="100" value="{}">{}%</progress> '
            '<span class="progress-text">{}% {}</span> <span class="progress-result"></span>'
            "</span>",
            url,
            obj.percent,
            obj.percent,
            obj.percent,
            obj.step if obj.status != "done" else "",
        )

    def progress_view(self, request, pk):
        """What the progress bar of an export shows, as JSON (polled while it is built)."""
        export = AuditExport.objects.filter(pk=pk).first()
        if export is None or not selectors.may_read(request.user, export):
            raise Http404("no such audit export")
        done = export.status == AuditExport.Status.DONE and bool(export.file)
        return JsonResponse(
            {
                "status": export.status,
                "status_label": export.get_status_display(),
                "step": export.step,
                "done": export.done,
                "total": export.total,
                "percent": export.percent,
                "error": export.error,
                "file": (
                    reverse("admin:consortium_auditexport_file", args=[export.pk]) if done else None
                ),
                "file_name": f"audit-{str(export.pk)[:8]}.zip" if done else None,
            }
        )

    @admin.display(description=_("file"))
    def download(self, obj):
        if obj.status != AuditExport.Status.DONE or not obj.file:
            return "-"
        url = reverse("admin:consortium_auditexport_file", args=[obj.pk])
        return format_html('<a href="{}">audit-{}.zip</a>', url, str(obj.pk)[:8])

    @admin.display(description=_("verify offline with"))
    def verify_with(self, obj):
        s = log_signer()
        return format_html(
            "<code>{} audit-{}.zip --vkey '{}' --policy &lt;your policy file&gt;</code> "
            "(your own C2SP tlog-policy: the witnesses whose cosignatures you require)",
            VERIFY_COMMAND,
            obj.pk,
            verifier_key(s.name, s.public_key),
        )

    def get_urls(self):
        urls = super().get_urls()
        own = [
            path(
                "ask/", self.admin_site.admin_view(self.ask_view), name="consortium_auditexport_ask"
            ),
            path(
                "<uuid:pk>/progress/",
                self.admin_site.admin_view(self.progress_view),
                name="consortium_auditexport_progress",
            ),
            path(
                "<uuid:pk>/file/",
                self.admin_site.admin_view(self.file_view),
                name="consortium_auditexport_file",
            ),
        ]
        return own + urls

    def changelist_view(self, request, extra_context=None):
        running = self.get_queryset(request).filter(status__in=["queued", "running"]).exists()
        extra = {
            "can_ask": self._may_ask(request.user),
            "refresh": running,
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, object_id)
        refresh = obj is not None and obj.status in ("queued", "running")
        return super().change_view(
            request, object_id, form_url, {"refresh": refresh, **(extra_context or {})}
        )

    @staticmethod
    def _may_ask(user) -> bool:
        try:
            selectors.exporter_scope(user)
        except GovernanceError:
            return False
        return True

    def ask_view(self, request):
        try:
            scope = selectors.exporter_scope(request.user)
        except GovernanceError as exc:
            raise PermissionDenied from exc
        members = Member.objects.order_by("code")
        choices = [("", "everything")] if scope is None else []
        choices += [(m.code, str(m)) for m in members if scope is None or m.code == scope]
        form = AuditExportForm(request.POST or None, members=choices)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            with refusals(lambda message: form.add_error(None, message)):
                export = audit.audit_export_request(
                    actor=request.user,
                    member=data["member"] or None,
                    date_from=data["date_from"],
                    date_to=data["date_to"],
                )
                self.message_user(
                    request, _("The export is being built; this page follows it."), messages.SUCCESS
                )
                return redirect("admin:consortium_auditexport_change", export.pk)
        context = {
            **self.admin_site.each_context(request),
            "form": form,
            "title": _("Ask for an audit export"),
            "opts": self.model._meta,
            "submit_label": _("Build the export"),
            "changelist_url": reverse("admin:consortium_auditexport_changelist"),
            "changelist_name": _("Audit exports"),
        }
        return TemplateResponse(request, "admin/consortium/auditexport/ask.html", context)

    def file_view(self, request, pk):
        export = AuditExport.objects.filter(pk=pk).first()
        if export is None or not selectors.may_read(request.user, export):
            raise Http404("no such audit export")
        if export.status != AuditExport.Status.DONE or not export.file:
            raise Http404("the export is not finished")
        return storage.attachment(
            export.file.name,
            filename=f"audit-{export.pk}.zip",
            content_type="application/zip",
            size=export.size,
        )
