"""Contributions in the admin: read-only projections, scoped to the delegate's member;
the cost-share report of each agreement with its chart."""

from __future__ import annotations

from datetime import date

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.template.response import TemplateResponse
from django.utils.safestring import mark_safe

from consortium import agreements
from consortium.admin import SeatVisible
from consortium.governance import holds_a_seat, visible_members_of
from consortium.models import Agreement
from contributions.chart import cost_share_svg
from contributions.models import Contribution, Dispute, Facility, SacctImport
from contributions.report import ReportError, cost_share_report


class MemberScoped(SeatVisible):
    """A delegate sees its own member's rows; the secretariat and auditors see all."""

    member_field = "member"

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        members = visible_members_of(request.user)
        return qs if members is None else qs.filter(**{f"{self.member_field}__in": members})


@admin.register(Facility)
class FacilityAdmin(SeatVisible):
    list_display = ["code", "name", "operator", "country", "timezone", "default_accelerator"]
    readonly_fields = ["code", "name", "operator", "country", "timezone", "default_accelerator",
                       "partitions", "accounts", "registered_in", "changed_in"]  # fmt: skip


@admin.register(Contribution)
class ContributionAdmin(MemberScoped):
    list_display = ["__str__", "kind", "member", "state", "delivered_on", "recorded_in"]
    list_filter = ["kind", "state", "member"]
    list_select_related = ["member"]
    date_hierarchy = "delivered_on"
    readonly_fields = [f.name for f in Contribution._meta.fields]


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
    readonly_fields = ["id", "facility", "export_sha256", "lines", "allocations", "left_out",
                       "recorded_in", "attested_in"]  # fmt: skip


@admin.register(Dispute)
class DisputeAdmin(SeatVisible):
    list_display = ["contribution", "member", "reason", "outcome", "opened_in", "resolved_in"]
    readonly_fields = ["id", "contribution", "member", "reason", "opened_in", "outcome",
                       "resolution", "resolved_in"]  # fmt: skip


def cost_share_view(request, pk):
    """The cost-share report of one agreement, with its chart (every seat holder)."""
    if not (request.user.is_superuser or holds_a_seat(request.user)):
        raise PermissionDenied
    agreement = agreements.visible_agreements(request.user).filter(id=pk).first()
    if agreement is None:
        raise Http404("no such agreement")
    try:
        start = date.fromisoformat(request.GET["from"]) if request.GET.get("from") else None
        end = date.fromisoformat(request.GET["to"]) if request.GET.get("to") else None
    except ValueError as exc:
        raise Http404("from and to are dates, YYYY-MM-DD") from exc
    context = {**admin.site.each_context(request), "agreement": agreement,
               "title": f"Cost shares: {agreement}", "opts": Agreement._meta}  # fmt: skip
    try:
        data = cost_share_report(agreement, start, end).as_dict()
    except ReportError as exc:
        context["error"] = str(exc)
    else:
        context.update(report=data, chart=mark_safe(cost_share_svg(data)))  # noqa: S308  (escaped in chart.py)
    return TemplateResponse(request, "admin/contributions/cost_shares.html", context)
