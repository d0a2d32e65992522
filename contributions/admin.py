"""Contributions in the admin: read-only projections, scoped to the delegate's member;
the cost-share report of each agreement with its chart."""

from __future__ import annotations

from datetime import date

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext, gettext_lazy
from django.utils.translation import gettext as _

from consortium.governance import in_words
from consortium.governance.admin import SeatVisible
from consortium.governance.changes import refusals
from consortium.governance.models import Agreement
from consortium.governance.selectors import holds_a_seat, recording_for, visible_agreements
from consortium.governance.terms import ACCESS_MODES, DUO_MODIFIERS, DUO_PERMISSIONS
from consortium.web.formfields import AsciiDateField, AsciiIntegerField
from contributions import selectors
from contributions.chart import cost_share_svg
from contributions.compute import sacct_import
from contributions.data import data_contribute
from contributions.disputes import contribution_dispute
from contributions.funds import funds_confirm, funds_contribute, funds_reject
from contributions.licences import licence_names
from contributions.models import Contribution, Dispute, Facility, SacctImport
from contributions.report import ReportError, cost_share_report
from contributions.sacct import gpu_hours
from ledger.display import time_column


@admin.register(Facility)
class FacilityAdmin(SeatVisible):
    list_display = ["code", "name", "operator", "country", "timezone", "default_accelerator"]
    readonly_fields = [
        "code",
        "name",
        "operator",
        "country",
        "timezone",
        "default_accelerator",
        "partitions",
        "accounts",
        "registered_in",
        "changed_in",
    ]


class FundsForm(forms.Form):
    amount = forms.CharField(help_text=gettext_lazy("An exact decimal, such as 250000.00."))
    currency = forms.CharField(
        max_length=3, help_text=gettext_lazy("ISO 4217, such as EUR or SEK.")
    )
    date = AsciiDateField(
        help_text=gettext_lazy("The day paid."), widget=forms.DateInput(attrs={"type": "date"})
    )
    reference = forms.CharField(required=False, max_length=200)


class DatasetForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    manifest_sha256 = forms.RegexField(
        r"^[0-9a-f]{64}$", help_text=gettext_lazy("From `manage.py contributions manifest DIR`.")
    )
    size_bytes = AsciiIntegerField(min_value=0)
    files = AsciiIntegerField(min_value=0)
    tokens = AsciiIntegerField(min_value=0, required=False)
    records = AsciiIntegerField(min_value=0, required=False)
    licence = forms.CharField(
        help_text=gettext_lazy(
            "SPDX licence id or expression, such as CC-BY-4.0; LicenseRef-<name> for a "
            "licence not on the SPDX list."
        )
    )
    permission = forms.ChoiceField(
        choices=sorted(DUO_PERMISSIONS.items()),
        help_text=gettext_lazy("GA4GH DUO data use permission."),
    )
    modifiers = forms.MultipleChoiceField(choices=sorted(DUO_MODIFIERS.items()), required=False)
    duo_values = forms.JSONField(
        required=False,
        label=gettext_lazy("DUO values"),
        help_text=gettext_lazy(
            'The value each term that takes one needs, by code: {"DUO:0000007": '
            '{"disease": "MONDO:0005015"}, "DUO:0000022": {"region": "EU"}, "DUO:0000025": '
            '{"months": 24}}.'
        ),
    )
    residency = forms.CharField(
        max_length=2,
        required=False,
        help_text=gettext_lazy("The country the data must stay in (ISO 3166-1)."),
    )
    access_mode = forms.ChoiceField(choices=[(m, m) for m in ACCESS_MODES])

    def dataset(self) -> dict:
        d = self.cleaned_data
        out = {
            k: d[k]
            for k in (
                "name",
                "description",
                "manifest_sha256",
                "size_bytes",
                "files",
                "licence",
                "access_mode",
            )
        }
        values = d.get("duo_values") or {}

        def term(code):
            given = values.get(code) if isinstance(values, dict) else None
            return {"code": code, **given} if isinstance(given, dict) else code

        out["duo"] = {
            "permission": term(d["permission"]),
            "modifiers": [term(m) for m in d["modifiers"]],
        }
        for k in ("tokens", "records"):
            if d[k] is not None:
                out[k] = d[k]
        if d["residency"]:
            out["residency"] = d["residency"]
        return out


class ImportForm(forms.Form):
    facility = forms.ModelChoiceField(queryset=Facility.objects.none())
    export = forms.FileField(
        help_text=gettext_lazy("sacct --parsable2 (or --parsable) output, with its header.")
    )
    dry_run = forms.BooleanField(
        required=False,
        initial=True,
        help_text=gettext_lazy("Show what would be recorded; record nothing."),
    )

    def __init__(self, *args, facilities, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["facility"].queryset = facilities


@admin.register(Contribution)
class ContributionAdmin(SeatVisible):
    """A member's recorders and signatories see its contributions, record funds and
    import their facility's accounting; signatories dispute others' contributions; the
    treasurer (the secretariat, or the member the treaty names) confirms or rejects
    pending payments."""

    list_display = ["__str__", "kind", "member", "state", "disputed", "delivered_on", "recorded_in"]
    list_filter = ["kind", "state", "disputed", "member"]
    list_select_related = ["member"]
    date_hierarchy = "delivered_on"
    readonly_fields = [
        "recorded_at_shown" if f.name == "recorded_at" else f.name
        for f in Contribution._meta.fields
    ]
    readonly_fields = ["dataset_in_words", *readonly_fields]
    fields = readonly_fields
    recorded_at_shown = time_column("recorded_at", gettext_lazy("recorded at"))

    @admin.display(description=gettext_lazy("the dataset in words"))
    def dataset_in_words(self, obj):
        """A dataset's licence with each SPDX licence's name, and its data-use terms with
        each DUO code's label and meaning (the raw record is the ``dataset`` field)."""
        d = obj.dataset
        if not d:
            return "-"
        licences = format_html_join(
            ", ", "<code>{}</code> ({})", licence_names(d.get("licence", ""))
        )
        duo = d.get("duo") or {}
        lines = []
        if duo.get("permission"):
            permission, modifiers = in_words.duo_in_words(duo)
            lines = [permission, *modifiers]
        terms = format_html_join(
            "",
            "<li><code>{}</code> {}: {}{}</li>",
            ((t.code, t.label, t.meaning, f" ({t.detail})" if t.detail else "") for t in lines),
        )
        return format_html(
            "<p><strong>{}</strong></p><p>{} {}</p><p>{}</p><ul>{}</ul>",
            d.get("name", ""),
            _("Licence:"),
            licences,
            _("Data use:"),
            terms,
        )

    actions = ["dispute", "confirm_funds", "reject_funds"]

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("funds/", view(self.funds_view), name="contributions_contribution_funds"),
            path("data/", view(self.data_view), name="contributions_contribution_data"),
            path("import/", view(self.import_view), name="contributions_contribution_import"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra = {
            "can_record": recording_for(request.user) is not None,
            "can_import": selectors.facilities_run_by(request.user).exists(),
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra)

    def _form_page(self, request, form, title, submit, intro, result=None):
        context = {
            **self.admin_site.each_context(request),
            "form": form,
            "title": title,
            "opts": self.model._meta,
            "submit_label": submit,
            "intro": intro,
            "result": result,
            "changelist_url": reverse("admin:contributions_contribution_changelist"),
            "changelist_name": gettext("Contributions"),
        }
        return TemplateResponse(request, "admin/contributions/contribution/form.html", context)

    def funds_view(self, request):
        member = recording_for(request.user)
        if member is None:
            raise PermissionDenied
        form = FundsForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            d = form.cleaned_data
            with refusals(lambda message: form.add_error(None, message)):
                c = funds_contribute(
                    actor=request.user,
                    amount=d["amount"].strip(),
                    currency=d["currency"].strip(),
                    date_paid=d["date"].isoformat(),
                    reference=d["reference"],
                )
                self.message_user(
                    request,
                    gettext("Recorded %(contribution)s.") % {"contribution": c},
                    messages.SUCCESS,
                )
                return redirect("admin:contributions_contribution_changelist")
        return self._form_page(
            request,
            form,
            gettext("Record funds"),
            gettext("Record"),
            gettext("Funds paid by %(member)s, recorded on the ledger with its key.")
            % {"member": member},
        )

    def data_view(self, request):
        member = recording_for(request.user)
        if member is None:
            raise PermissionDenied
        form = DatasetForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            with refusals(lambda message: form.add_error(None, message)):
                c = data_contribute(actor=request.user, dataset=form.dataset())
                self.message_user(
                    request,
                    gettext("Recorded %(contribution)s.") % {"contribution": c},
                    messages.SUCCESS,
                )
                return redirect("admin:contributions_contribution_changelist")
        return self._form_page(
            request,
            form,
            gettext("Record a dataset"),
            gettext("Record"),
            gettext(
                "A dataset %(member)s contributes, known by its manifest hash: its bytes never leave."
            )
            % {"member": member},
        )

    def import_view(self, request):
        facilities = selectors.facilities_run_by(request.user)
        if not facilities.exists():
            raise PermissionDenied
        form = ImportForm(request.POST or None, request.FILES or None, facilities=facilities)
        result = None
        if request.method == "POST" and form.is_valid():
            d = form.cleaned_data
            with refusals(lambda message: form.add_error(None, message)):
                reading, rows, imported = sacct_import(
                    actor=request.user,
                    facility=d["facility"],
                    data=d["export"].read(),
                    dry_run=d["dry_run"],
                )
                result = {
                    "reading": reading,
                    "rows": [{**r, "gpu_hours": gpu_hours(r["gpu_seconds"])} for r in rows],
                    "imported": imported,
                    "left_out": sorted(reading.left_out_counts.items()),
                }
                if imported is not None:
                    self.message_user(
                        request,
                        gettext("Recorded at entry %(index)s.") % {"index": imported.recorded_in},
                        messages.SUCCESS,
                    )
        return self._form_page(
            request,
            form,
            gettext("Import accounting"),
            gettext("Read the export"),
            gettext(
                "A SLURM export of a facility your member runs: one entry "
                "of aggregates and the export's SHA-256."
            ),
            result,
        )

    def get_queryset(self, request):
        qs = selectors.visible_contributions(request.user, super().get_queryset(request))
        # The treasurer sees the payments awaiting its confirmation, whoever paid them.
        pending = selectors.awaiting_treasurer(request.user)
        return qs if pending is None else (qs | pending).distinct()

    def _settle(self, request, queryset, service, done: str, **kwargs):
        """``done`` is the message, with %(contribution)s for each contribution settled."""
        for c in queryset:
            with refusals(self.refused(request, c)):
                service(actor=request.user, contribution=c, **kwargs)
                self.message_user(request, done % {"contribution": c}, messages.SUCCESS)

    @admin.action(
        description=gettext_lazy("Confirm the selected payments: they are in the treasurer's books")
    )
    def confirm_funds(self, request, queryset):
        self._settle(request, queryset, funds_confirm, gettext("Confirmed %(contribution)s."))

    @admin.action(
        description=gettext_lazy(
            "Reject the selected payments: they are not in the treasurer's books"
        )
    )
    def reject_funds(self, request, queryset):
        self._settle(
            request,
            queryset,
            funds_reject,
            gettext("Rejected %(contribution)s."),
            reason="not in the treasurer's books (rejected in the admin)",
        )

    @admin.action(description=gettext_lazy("Dispute the selected contributions"))
    def dispute(self, request, queryset):
        for c in queryset:
            with refusals(self.refused(request, c)):
                contribution_dispute(
                    actor=request.user, contribution=c, reason="disputed in the admin"
                )
                self.message_user(
                    request,
                    gettext("Disputed %(contribution)s.") % {"contribution": c},
                    messages.SUCCESS,
                )


@admin.register(SacctImport)
class SacctImportAdmin(SeatVisible):
    list_display = [
        "export_sha256",
        "facility",
        "lines",
        "allocations",
        "recorded_in",
        "attested_in",
    ]
    readonly_fields = [
        "id",
        "facility",
        "export_sha256",
        "lines",
        "allocations",
        "left_out",
        "recorded_in",
        "attested_in",
    ]


@admin.register(Dispute)
class DisputeAdmin(SeatVisible):
    list_display = ["contribution", "member", "reason", "outcome", "opened_in", "resolved_in"]
    readonly_fields = [
        "id",
        "contribution",
        "member",
        "reason",
        "opened_in",
        "outcome",
        "resolution",
        "resolved_in",
    ]


def cost_share_index_view(request):
    """The agreements whose terms share costs, each linked to its report (every seat
    holder): the report's entry in the admin's navigation and the dashboard."""
    if not (request.user.is_superuser or holds_a_seat(request.user)):
        raise PermissionDenied
    agreements = [
        a
        for a in visible_agreements(request.user).order_by("-proposed_in")
        if a.terms.get("cost_sharing")
    ]
    context = {
        **admin.site.each_context(request),
        "agreements": agreements,
        "title": gettext("Cost-share reports"),
        "opts": Agreement._meta,
    }
    return TemplateResponse(request, "admin/contributions/cost_share_index.html", context)


def cost_share_view(request, pk):
    """The cost-share report of one agreement, with its chart (every seat holder)."""
    if not (request.user.is_superuser or holds_a_seat(request.user)):
        raise PermissionDenied
    agreement = visible_agreements(request.user).filter(id=pk).first()
    if agreement is None:
        raise Http404("no such agreement")
    try:
        start = date.fromisoformat(request.GET["from"]) if request.GET.get("from") else None
        end = date.fromisoformat(request.GET["to"]) if request.GET.get("to") else None
    except ValueError as exc:
        raise Http404("from and to are dates, YYYY-MM-DD") from exc
    context = {
        **admin.site.each_context(request),
        "agreement": agreement,
        "title": gettext("Cost shares: %(agreement)s") % {"agreement": agreement},
        "opts": Agreement._meta,
    }
    try:
        data = cost_share_report(agreement, start, end).as_dict()
    except ReportError as exc:
        context["error"] = str(exc)
    else:
        context.update(report=data, chart=mark_safe(cost_share_svg(data)))  # noqa: S308  (escaped in chart.py)
    return TemplateResponse(request, "admin/contributions/cost_shares.html", context)
