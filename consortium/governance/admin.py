"""Governance in the admin: the consortium, members, seats, proposals and the
decisions they made; projections are visible and never edited here."""

import json
from collections.abc import Callable
from datetime import UTC, datetime

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import CharField, OuterRef, Subquery, Value
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

# The admin is imported at start-up, and with it every governance module that registers
# appliers and projections: proposals' too, though the admin calls none of it.
from consortium.governance import in_words, proposals, selectors, tokens  # noqa: F401
from consortium.governance.actions import describe
from consortium.governance.changes import member_hosted_key, refusals
from consortium.governance.models import (
    AccessGrant,
    Consortium,
    Member,
    Proposal,
    ReleaseApproval,
    Seat,
    ValuationTable,
    Vote,
)
from consortium.governance.seats import seat_assign, seat_vacate
from consortium.governance.votes import vote_cast
from consortium.governance.voting import CHOICES
from consortium.web.stepup import stepup_required
from ledger.admin import ReadOnlyAdmin
from ledger.core.envelope import parse_time

# --- governance (projections: visible, never editable here) ------------------------------


class SeatVisible(ReadOnlyAdmin):
    """Read-only for every seat holder (and superusers), like the ledger itself; writes
    go through the services (the actions and forms below call them)."""

    def refused(self, request, about) -> Callable[[str], None]:
        """How a refusal of a change to ``about`` is told to the user (for ``refusals``)."""
        return lambda message: self.message_user(request, f"{about}: {message}", messages.ERROR)


@admin.register(Consortium)
class ConsortiumAdmin(SeatVisible):
    list_display = ["name", "founded_in"]
    readonly_fields = ["name", "rules", "founded_in"]


@admin.register(Member)
class MemberAdmin(SeatVisible):
    list_display = ["code", "name", "kind", "status", "country", "figures", "changed_in"]
    list_filter = ["kind", "status"]
    search_fields = ["code", "name"]
    readonly_fields = [
        "code",
        "name",
        "kind",
        "status",
        "country",
        "figures",
        "registered_in",
        "changed_in",
    ]


class AssignSeatForm(forms.Form):
    username = forms.CharField(help_text=gettext_lazy("The user who will hold the seat."))
    member = forms.ChoiceField(
        required=False, help_text=gettext_lazy("Empty for a consortium-wide role.")
    )
    role = forms.ChoiceField(choices=Seat.Role.choices)

    def __init__(self, *args, members, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["member"].choices = [("", _("(the consortium)")), *members]

    def clean_username(self):
        from django.contrib.auth import get_user_model

        user = get_user_model().objects.filter(username=self.cleaned_data["username"]).first()
        if user is None:
            raise forms.ValidationError(_("no such user"))
        return user


@admin.register(Seat)
class SeatAdmin(SeatVisible):
    """A delegate sees its own member's seats; the secretariat and auditors see all.

    Assigning and vacating call the governance services, which decide who may.
    """

    list_display = ["id", "member", "role", "assigned_in", "vacated_in"]
    list_filter = ["role"]
    list_select_related = ["member"]
    readonly_fields = ["id", "member", "role", "assigned_in", "vacated_in"]
    actions = ["vacate"]

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        visible = selectors.visible_members_of(request.user)
        return qs if visible is None else qs.filter(member__in=visible)

    def get_urls(self):
        urls = super().get_urls()
        assign = path(
            "assign/", self.admin_site.admin_view(self.assign_view), name="consortium_seat_assign"
        )
        return [assign, *urls]

    def changelist_view(self, request, extra_context=None):
        extra = {
            "can_assign": selectors.acting_for(request.user) is not False,
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra)

    def assign_view(self, request):
        acting_for = selectors.acting_for(request.user)
        if acting_for is False:
            raise PermissionDenied
        members = Member.objects.order_by("code")
        if acting_for is not None:
            members = members.filter(code=acting_for)
        form = AssignSeatForm(request.POST or None, members=[(m.code, str(m)) for m in members])
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            with refusals(lambda message: form.add_error(None, message)):
                seat = seat_assign(
                    actor=request.user,
                    user=data["username"],
                    role=data["role"],
                    member=data["member"] or None,
                )
                self.message_user(
                    request,
                    _("Assigned %(seat)s to %(user)s.") % {"seat": seat, "user": data["username"]},
                    messages.SUCCESS,
                )
                return redirect("admin:consortium_seat_changelist")
        context = {
            **self.admin_site.each_context(request),
            "form": form,
            "acting_for": acting_for,
            "title": _("Assign a seat"),
            "opts": self.model._meta,
            "submit_label": _("Assign"),
            "changelist_url": reverse("admin:consortium_seat_changelist"),
            "changelist_name": _("Seats"),
        }
        return TemplateResponse(request, "admin/consortium/seat/assign.html", context)

    @admin.action(description=gettext_lazy("Vacate the selected seats"))
    def vacate(self, request, queryset):
        done = 0
        for seat in queryset.filter(vacated_in__isnull=True):
            with refusals(self.refused(request, seat)):
                seat_vacate(actor=request.user, seat=seat, reason="vacated in the admin")
                done += 1
        if done:
            self.message_user(
                request, _("Vacated %(count)s seat(s).") % {"count": done}, messages.SUCCESS
            )


@admin.register(Proposal)
class ProposalAdmin(SeatVisible):
    """Every seat holder sees the proposals; a signatory votes from the proposal's page,
    after a confirmation page, through the vote service."""

    list_display = [
        "title",
        "state",
        "rule_name",
        "deadline_for_people",
        "your_vote",
        "opened_in",
        "closed_in",
    ]
    list_filter = ["state"]
    search_fields = ["title"]
    # No list actions: a vote is cast from the proposal's page, after reading it.
    actions = None

    def get_queryset(self, request):
        member = selectors.member_of(request.user)
        votes = Vote.objects.filter(proposal=OuterRef("pk"), member_id=member).values("choice")[:1]
        return (
            super()
            .get_queryset(request)
            .annotate(my_vote=Subquery(votes), my_member=Value(member, output_field=CharField()))
        )

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path(
                "<uuid:pk>/vote/<str:choice>/",
                view(self.vote_view),
                name="consortium_proposal_vote",
            ),
            *super().get_urls(),
        ]

    @admin.display(description=gettext_lazy("deadline"), ordering="deadline")
    def deadline_for_people(self, obj):
        return in_words.when(obj.deadline)

    @admin.display(description=gettext_lazy("your member's vote"))
    def your_vote(self, obj):
        if not obj.my_member:
            return "-"
        if obj.my_vote:
            return in_words.CHOICE_WORDS.get(obj.my_vote, obj.my_vote)
        if obj.state != Proposal.State.OPEN:
            return "-"
        url = reverse("admin:consortium_proposal_change", args=[obj.id])
        return format_html('<a href="{}">{}</a>', url, _("awaiting your vote"))

    def _page_context(self, request, proposal):
        now = datetime.now(UTC)
        return {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": proposal,
            "proposal": proposal,
            "actions_in_words": [describe(a) for a in proposal.actions],
            "words": in_words.proposal_in_words(proposal),
            "deadline": in_words.when(proposal.deadline),
            "time_left": in_words.time_left(parse_time(proposal.deadline), now),
            "opened_at": in_words.entry_time(proposal.opened_in),
            "closed_at": in_words.entry_time(proposal.closed_in),
        }

    def change_view(self, request, object_id, form_url="", extra_context=None):
        proposal = self.get_object(request, object_id)
        if proposal is None or not self.has_view_permission(request, proposal):
            raise Http404(_("no such proposal"))
        member = selectors.acting_for(request.user)
        vote = proposal.votes.filter(member_id=member).first() if member else None
        context = {
            **self._page_context(request, proposal),
            "title": proposal.title,
            "may_vote": in_words.may_vote(request.user, proposal, datetime.now(UTC)),
            "member": member or None,
            "my_vote": vote,
            "my_vote_at": in_words.when(vote.cast_at) if vote else "",
            "choices": [(c, in_words.CHOICE_WORDS[c]) for c in CHOICES],
            "rule_json": json.dumps(proposal.rule, indent=2),
            "actions_json": json.dumps(proposal.actions, indent=2, ensure_ascii=False),
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/consortium/proposal/page.html", context)

    @stepup_required
    def vote_view(self, request, pk, choice):
        """What the vote is, for whom and under which key; POST casts it."""
        proposal = Proposal.objects.filter(id=pk).first()
        if proposal is None or not self.has_view_permission(request, proposal):
            raise Http404(_("no such proposal"))
        if choice not in CHOICES:
            raise Http404(_("a vote is yes, no or abstain"))
        member = selectors.acting_for(request.user)
        # Only the signatory of an eligible member votes: anyone else is refused before
        # anything is shown or written.
        if not member or member not in proposal.eligible:
            raise PermissionDenied
        page = redirect("admin:consortium_proposal_change", proposal.id)
        if not in_words.may_vote(request.user, proposal, datetime.now(UTC)):
            self.message_user(
                request,
                _(
                    "%(member)s cannot vote on this proposal now: it has voted, or the "
                    "proposal is closed or past its deadline."
                )
                % {"member": member},
                messages.WARNING,
            )
            return page
        if request.method == "POST":
            with refusals(self.refused(request, proposal)):
                vote = vote_cast(actor=request.user, proposal=proposal, choice=choice)
                self.message_user(
                    request,
                    _("%(member)s voted %(choice)s on %(proposal)s: ledger entry %(index)s.")
                    % {
                        "member": member,
                        "choice": in_words.CHOICE_WORDS[choice],
                        "proposal": proposal,
                        "index": vote.cast_in,
                    },
                    messages.SUCCESS,
                )
            return page
        context = {
            **self._page_context(request, proposal),
            "title": _("Confirm your vote"),
            "choice": choice,
            "choice_words": in_words.CHOICE_WORDS[choice],
            "member": member,
            "member_name": Member.objects.get(code=member).name,
            "key": member_hosted_key(member),
        }
        return TemplateResponse(request, "admin/consortium/proposal/vote.html", context)


@admin.register(ValuationTable)
class ValuationTableAdmin(SeatVisible):
    list_display = ["version", "unit", "weights", "adopted_in"]
    readonly_fields = ["version", "unit", "weights", "adopted_in", "proposal"]


@admin.register(AccessGrant)
class AccessGrantAdmin(SeatVisible):
    list_display = ["member", "scope", "checkpoints", "until", "granted_in", "revoked_in"]
    list_filter = ["scope"]
    readonly_fields = [
        "id",
        "member",
        "scope",
        "checkpoints",
        "until",
        "reason",
        "granted_in",
        "revoked_in",
    ]

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        visible = selectors.visible_members_of(request.user)
        return qs if visible is None else qs.filter(member__in=visible)


@admin.register(ReleaseApproval)
class ReleaseApprovalAdmin(SeatVisible):
    list_display = ["checkpoint", "note", "approved_in"]
    readonly_fields = ["checkpoint", "note", "approved_in", "proposal"]
