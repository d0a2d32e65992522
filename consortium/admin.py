import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import CharField, OuterRef, Subquery, Value
from django.http import FileResponse, Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, path, reverse
from django.utils.html import format_html

from consortium import agreements, audit, governance, proposals, storage
from consortium.formfields import AsciiDateField
from consortium.models import (
    AccessGrant,
    Agreement,
    AgreementParty,
    ApiToken,
    AuditExport,
    Consortium,
    DownloadAuthorization,
    DownloadEvent,
    Member,
    ModelCheckpoint,
    Proposal,
    ReleaseApproval,
    Seat,
    TrainedModel,
    TrainingRun,
    ValuationTable,
    Vote,
)
from ledger.admin import ReadOnlyAdmin
from ledger.log import LedgerError


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are issued with `manage.py apitoken create`; here they can be seen and revoked."""

    list_display = [
        "key_id",
        "user",
        "seat",
        "name",
        "created_at",
        "expires_at",
        "revoked_at",
        "last_used_at",
    ]
    list_filter = ["revoked_at"]
    search_fields = ["key_id", "user__username", "name"]
    list_select_related = ["user", "seat", "seat__member"]
    readonly_fields = [
        "user",
        "name",
        "key_id",
        "created_at",
        "expires_at",
        "revoked_at",
        "last_used_at",
    ]
    exclude = ["secret_hash"]
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Revoke the selected tokens", permissions=["change"])
    def revoke(self, request, queryset):
        count = 0
        for token in queryset.filter(revoked_at__isnull=True):
            token.revoke()
            count += 1
        self.message_user(request, f"Revoked {count} token(s).", messages.SUCCESS)


# --- governance (projections: visible, never editable here) ------------------------------


class SeatVisible(ReadOnlyAdmin):
    """Read-only for every seat holder (and superusers), like the ledger itself; writes
    go through the services (the actions and forms below call them)."""


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
    username = forms.CharField(help_text="The user who will hold the seat.")
    member = forms.ChoiceField(required=False, help_text="Empty for a consortium-wide role.")
    role = forms.ChoiceField(choices=Seat.Role.choices)

    def __init__(self, *args, members, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["member"].choices = [("", "(the consortium)"), *members]

    def clean_username(self):
        from django.contrib.auth import get_user_model

        user = get_user_model().objects.filter(username=self.cleaned_data["username"]).first()
        if user is None:
            raise forms.ValidationError("no such user")
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
        visible = governance.visible_members_of(request.user)
        return qs if visible is None else qs.filter(member__in=visible)

    def get_urls(self):
        urls = super().get_urls()
        assign = path(
            "assign/", self.admin_site.admin_view(self.assign_view), name="consortium_seat_assign"
        )
        return [assign, *urls]

    def changelist_view(self, request, extra_context=None):
        extra = {
            "can_assign": governance.acting_for(request.user) is not False,
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra)

    def assign_view(self, request):
        acting_for = governance.acting_for(request.user)
        if acting_for is False:
            raise PermissionDenied
        members = Member.objects.order_by("code")
        if acting_for is not None:
            members = members.filter(code=acting_for)
        form = AssignSeatForm(request.POST or None, members=[(m.code, str(m)) for m in members])
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                seat = governance.seat_assign(
                    actor=request.user,
                    user=data["username"],
                    role=data["role"],
                    member=data["member"] or None,
                )
            except (governance.GovernanceError, LedgerError) as exc:
                form.add_error(None, str(exc))
            else:
                self.message_user(
                    request, f"Assigned {seat} to {data['username']}.", messages.SUCCESS
                )
                return redirect("admin:consortium_seat_changelist")
        context = {
            **self.admin_site.each_context(request),
            "form": form,
            "acting_for": acting_for,
            "title": "Assign a seat",
            "opts": self.model._meta,
            "submit_label": "Assign",
            "changelist_url": reverse("admin:consortium_seat_changelist"),
            "changelist_name": "Seats",
        }
        return TemplateResponse(request, "admin/consortium/seat/assign.html", context)

    @admin.action(description="Vacate the selected seats")
    def vacate(self, request, queryset):
        done = 0
        for seat in queryset.filter(vacated_in__isnull=True):
            try:
                governance.seat_vacate(actor=request.user, seat=seat, reason="vacated in the admin")
                done += 1
            except (governance.GovernanceError, LedgerError) as exc:
                self.message_user(request, f"{seat}: {exc}", messages.ERROR)
        if done:
            self.message_user(request, f"Vacated {done} seat(s).", messages.SUCCESS)


@admin.register(Proposal)
class ProposalAdmin(SeatVisible):
    """Every seat holder sees the proposals; signatories vote with the actions."""

    list_display = [
        "title",
        "state",
        "rule_name",
        "deadline",
        "your_vote",
        "opened_in",
        "closed_in",
    ]
    list_filter = ["state"]
    search_fields = ["title"]
    readonly_fields = [
        "id",
        "title",
        "actions",
        "rule_name",
        "rule",
        "eligible",
        "deadline",
        "state",
        "tally",
        "opened_in",
        "closed_in",
    ]
    actions = ["vote_yes", "vote_no", "vote_abstain"]

    def get_queryset(self, request):
        seat = governance.seat_of(request.user)
        member = seat.member_id if seat is not None else None
        votes = Vote.objects.filter(proposal=OuterRef("pk"), member_id=member).values("choice")[:1]
        return (
            super()
            .get_queryset(request)
            .annotate(my_vote=Subquery(votes), my_member=Value(member, output_field=CharField()))
        )

    @admin.display(description="your member's vote")
    def your_vote(self, obj):
        if not obj.my_member:
            return "-"
        if obj.my_vote:
            return obj.my_vote
        return "awaiting your vote" if obj.state == "open" else "-"

    def _vote(self, request, queryset, choice):
        for proposal in queryset:
            try:
                proposals.vote_cast(actor=request.user, proposal=proposal, choice=choice)
                self.message_user(request, f"Voted {choice} on {proposal}.", messages.SUCCESS)
            except (governance.GovernanceError, LedgerError) as exc:
                self.message_user(request, f"{proposal}: {exc}", messages.ERROR)

    @admin.action(description="Vote yes on the selected proposals")
    def vote_yes(self, request, queryset):
        self._vote(request, queryset, "yes")

    @admin.action(description="Vote no on the selected proposals")
    def vote_no(self, request, queryset):
        self._vote(request, queryset, "no")

    @admin.action(description="Abstain on the selected proposals")
    def vote_abstain(self, request, queryset):
        self._vote(request, queryset, "abstain")


# --- agreements ------------------------------------------------------------------------------


class AgreementPartyInline(admin.TabularInline):
    """Who has signed and who has not."""

    model = AgreementParty
    fields = ["member", "required", "signature", "signed_at", "withdrawn_in", "withdrawal_reason"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = "parties: who has signed and who has not"

    @admin.display(description="signature")
    def signature(self, party):
        if party.withdrawn_in is not None:
            return f"withdrawn (entry {party.withdrawn_in})"
        if party.signed_in is not None:
            return f"signed (entry {party.signed_in})"
        return "not signed"

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser or governance.holds_a_seat(request.user)


class AwaitingSignatureFilter(admin.SimpleListFilter):
    title = "your member's signature"
    parameter_name = "awaiting"

    def lookups(self, request, model_admin):
        return [("yes", "awaiting your signature")] if governance.acting_for(request.user) else []

    def queryset(self, request, queryset):
        if self.value() == "yes":
            pending = agreements.awaiting_signature(request.user).values("agreement_id")
            return queryset.filter(id__in=pending)
        return queryset


class ProposeAgreementForm(forms.Form):
    kind = forms.ChoiceField(choices=Agreement.Kind.choices)
    title = forms.CharField(max_length=300)
    document = forms.FileField(help_text="The signed text; its SHA-256 goes on the ledger.")
    terms = forms.JSONField(
        widget=forms.Textarea(attrs={"rows": 18, "cols": 90, "class": "vLargeTextField"}),
        help_text="Structured terms as JSON (see docs/agreements.md).",
    )
    supersedes = forms.ModelChoiceField(
        queryset=Agreement.objects.none(),
        required=False,
        help_text="The agreement in force this version amends (empty: a new agreement).",
    )

    def __init__(self, *args, amendable, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["supersedes"].queryset = amendable


@admin.register(Agreement)
class AgreementAdmin(SeatVisible):
    """A delegate sees its member's agreements, those awaiting its signature first;
    signing and withdrawing are actions that call the services."""

    list_display = [
        "title",
        "kind",
        "version",
        "state",
        "signatures",
        "your_signature",
        "proposed_in",
        "in_force_in",
    ]
    list_filter = [AwaitingSignatureFilter, "state", "kind"]
    search_fields = ["title"]
    readonly_fields = [
        "id",
        "series",
        "version",
        "kind",
        "title",
        "state",
        "terms_pretty",
        "terms_sha256",
        "document_link",
        "document_sha256",
        "document_size",
        "supersedes",
        "proposed_by",
        "proposed_in",
        "in_force_in",
        "closed_in",
        "closed_reason",
        "cost_shares_link",
    ]
    exclude = ["terms", "document_name"]
    inlines = [AgreementPartyInline]
    actions = ["sign", "withdraw"]

    def get_queryset(self, request):
        seat = governance.seat_of(request.user)
        member = seat.member_id if seat is not None else None
        return (
            agreements.visible_agreements(request.user)
            .prefetch_related("parties")
            .annotate(my_member=Value(member, output_field=CharField()))
        )

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("propose/", view(self.propose_view), name="consortium_agreement_propose"),
            path(
                "<uuid:pk>/document/",
                view(self.document_view),
                name="consortium_agreement_document",
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra = {
            "can_propose": governance.acting_for(request.user) is not False,
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra)

    @admin.display(description="signed")
    def signatures(self, obj):
        parties = list(obj.parties.all())
        signed = sum(1 for p in parties if p.signed_in is not None and p.withdrawn_in is None)
        return f"{signed} of {len(parties)}"

    @admin.display(description="your member")
    def your_signature(self, obj):
        party = next((p for p in obj.parties.all() if p.member_id == obj.my_member), None)
        if party is None:
            return "-"
        if party.withdrawn_in is not None:
            return "withdrawn"
        if party.signed_in is not None:
            return "signed"
        return "awaiting your signature" if obj.state in agreements.SIGNABLE_STATES else "-"

    @admin.display(description="terms")
    def terms_pretty(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.terms, indent=2, ensure_ascii=False))

    @admin.display(description="cost shares")
    def cost_shares_link(self, obj):
        if "cost_sharing" not in obj.terms:
            return "-"
        try:
            url = reverse("contributions_cost_shares", args=[obj.id])
        except NoReverseMatch:
            return "-"
        return format_html('<a href="{}">value delivered against each share</a>', url)

    @admin.display(description="document")
    def document_link(self, obj):
        url = reverse("admin:consortium_agreement_document", args=[obj.id])
        return format_html('<a href="{}">{}</a>', url, obj.document_name)

    def document_view(self, request, pk):
        agreement = agreements.visible_agreements(request.user).filter(id=pk).first()
        doc = agreement and agreements.readable_document(request.user, agreement.document_sha256)
        if not doc:
            raise Http404("no such document")
        response = FileResponse(
            doc.file.open("rb"), as_attachment=True, filename=doc.name, content_type=doc.media_type
        )
        response["X-Content-Type-Options"] = "nosniff"
        return response

    def propose_view(self, request):
        scope = governance.acting_for(request.user)
        if scope is False:
            raise PermissionDenied
        amendable = agreements.visible_agreements(request.user).filter(
            state=Agreement.State.IN_FORCE
        )
        form = ProposeAgreementForm(
            request.POST or None, request.FILES or None, amendable=amendable
        )
        if request.method == "POST" and form.is_valid():
            d = form.cleaned_data
            upload = d["document"]
            try:
                doc = agreements.document_store(
                    actor=request.user,
                    name=upload.name,
                    content=upload.read(),
                    media_type=upload.content_type or "",
                )
                agreement = agreements.agreement_propose(
                    actor=request.user,
                    kind=d["kind"],
                    title=d["title"],
                    terms=d["terms"],
                    document_sha256=doc.sha256,
                    supersedes=d["supersedes"],
                )
            except (governance.GovernanceError, LedgerError) as exc:
                form.add_error(None, str(exc))
            else:
                self.message_user(request, f"Proposed {agreement} for signature.", messages.SUCCESS)
                return redirect("admin:consortium_agreement_change", agreement.id)
        context = {
            **self.admin_site.each_context(request),
            "form": form,
            "acting_for": scope,
            "title": "Propose an agreement",
            "opts": self.model._meta,
            "submit_label": "Propose for signature",
            "changelist_url": reverse("admin:consortium_agreement_changelist"),
            "changelist_name": "Agreements",
        }
        return TemplateResponse(request, "admin/consortium/agreement/propose.html", context)

    @admin.action(description="Sign the selected agreements for your member")
    def sign(self, request, queryset):
        """Show the exact hashes first; signing happens only on confirmation, over the
        hashes shown (if the agreement changed meanwhile, nothing is signed)."""
        if request.POST.get("confirm") == "yes":
            for agreement in queryset:
                try:
                    agreements.agreement_sign(
                        actor=request.user,
                        agreement=agreement,
                        terms_sha256=request.POST.get(f"terms_{agreement.id}", ""),
                        document_sha256=request.POST.get(f"document_{agreement.id}", ""),
                    )
                    self.message_user(request, f"Signed {agreement}.", messages.SUCCESS)
                except (governance.GovernanceError, LedgerError) as exc:
                    self.message_user(request, f"{agreement}: {exc}", messages.ERROR)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Sign agreements",
            "agreements": queryset,
            "opts": self.model._meta,
            "acting_for": governance.acting_for(request.user),
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/consortium/agreement/sign.html", context)

    @admin.action(description="Withdraw your member from the selected agreements")
    def withdraw(self, request, queryset):
        for agreement in queryset:
            try:
                agreements.agreement_withdraw(
                    actor=request.user, agreement=agreement, reason="withdrawn in the admin"
                )
                self.message_user(request, f"Withdrew from {agreement}.", messages.SUCCESS)
            except (governance.GovernanceError, LedgerError) as exc:
                self.message_user(request, f"{agreement}: {exc}", messages.ERROR)


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
        visible = governance.visible_members_of(request.user)
        return qs if visible is None else qs.filter(member__in=visible)


@admin.register(ReleaseApproval)
class ReleaseApprovalAdmin(SeatVisible):
    list_display = ["checkpoint", "note", "approved_in"]
    readonly_fields = ["checkpoint", "note", "approved_in", "proposal"]


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

    @admin.display(description="access")
    def access_link(self, obj):
        url = reverse("admin:consortium_modelcheckpoint_access", args=[obj.digest])
        return format_html('<a href="{}">who may download it, and why</a>', url)

    def access_view(self, request, digest):
        from consortium import downloads
        from consortium.access import entitlement
        from consortium.terms import ACCESS_SCOPES

        checkpoint = ModelCheckpoint.objects.filter(digest=digest).first()
        if checkpoint is None or not self.has_view_permission(request):
            raise Http404("no such checkpoint")
        visible = governance.visible_members_of(request.user)
        members = (
            [m.code for m in Member.objects.filter(status=Member.Status.MEMBER)]
            if visible is None
            else sorted(visible)
        )
        rows = [
            (code, scope, entitlement(code, checkpoint, scope))
            for code in members
            for scope in ACCESS_SCOPES
        ]
        issued = None
        if request.method == "POST":
            try:
                auth, token = downloads.download_authorize(
                    actor=request.user,
                    checkpoint=checkpoint,
                    request=request,
                    scope=request.POST.get("scope", "full_weights"),
                )
            except (governance.GovernanceError, LedgerError) as exc:
                self.message_user(request, str(exc), messages.ERROR)
            else:
                issued = {
                    "token": token,
                    "auth": auth,
                    "urls": [(p, f"/api/v1/downloads/{token}/{p}") for p in auth.files],
                }
        context = {
            **self.admin_site.each_context(request),
            "checkpoint": checkpoint,
            "rows": rows,
            "issued": issued,
            "opts": self.model._meta,
            "can_ask": governance.recording_for(request.user) is not None,
            "title": f"Access to {checkpoint}",
        }
        return TemplateResponse(request, "admin/consortium/modelcheckpoint/access.html", context)


@admin.register(DownloadAuthorization)
class DownloadAuthorizationAdmin(SeatVisible):
    list_display = ["authorized_in", "member", "checkpoint", "scope", "rule", "expires"]
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
        "expires",
        "authorized_in",
    ]

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        visible = governance.visible_members_of(request.user)
        return qs if visible is None else qs.filter(member__in=visible)


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
        qs = super().get_queryset(request)
        visible = governance.visible_members_of(request.user)
        return qs if visible is None else qs.filter(member__in=visible)


# --- audit exports -------------------------------------------------------------------------


class AuditExportForm(forms.Form):
    member = forms.ChoiceField(required=False, help_text="Only what concerns this member.")
    date_from = AsciiDateField(
        required=False, label="From (UTC day)", widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = AsciiDateField(
        required=False, label="To (UTC day)", widget=forms.DateInput(attrs={"type": "date"})
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
        return audit.visible_exports(request.user)

    def has_view_permission(self, request, obj=None):
        if not super().has_view_permission(request, obj):
            return False
        return obj is None or audit.may_read(request.user, obj)

    @admin.display(description="scope")
    def scope(self, obj):
        return obj.member_id or "everything"

    @admin.display(description="period or range")
    def period(self, obj):
        if obj.date_from or obj.date_to:
            return f"{obj.date_from or '…'} to {obj.date_to or '…'}"
        if obj.range_first is not None:
            return f"entries {obj.range_first:,}-{obj.range_end - 1:,}"
        return "all"

    @admin.display(description="progress")
    def progress_bar(self, obj):
        return format_html(
            '<progress max="100" value="{}"></progress> {}% {}',
            obj.percent,
            obj.percent,
            obj.step if obj.status != "done" else "",
        )

    @admin.display(description="file")
    def download(self, obj):
        if obj.status != AuditExport.Status.DONE or not obj.file:
            return "-"
        url = reverse("admin:consortium_auditexport_file", args=[obj.pk])
        return format_html('<a href="{}">audit-{}.zip</a>', url, str(obj.pk)[:8])

    @admin.display(description="verify offline with")
    def verify_with(self, obj):
        from ledger.core.note import verifier_key
        from ledger.keys import log_signer

        s = log_signer()
        return format_html(
            "<code>{} audit-{}.zip --vkey '{}'</code>",
            audit.VERIFY_COMMAND,
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
            audit._exporter_scope(user)
        except governance.GovernanceError:
            return False
        return True

    def ask_view(self, request):
        try:
            scope = audit._exporter_scope(request.user)
        except governance.GovernanceError as exc:
            raise PermissionDenied from exc
        members = Member.objects.order_by("code")
        choices = [("", "everything")] if scope is None else []
        choices += [(m.code, str(m)) for m in members if scope is None or m.code == scope]
        form = AuditExportForm(request.POST or None, members=choices)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                export = audit.audit_export_request(
                    actor=request.user,
                    member=data["member"] or None,
                    date_from=data["date_from"],
                    date_to=data["date_to"],
                )
            except (governance.GovernanceError, LedgerError) as exc:
                form.add_error(None, str(exc))
            else:
                self.message_user(
                    request, "The export is being built; this page follows it.", messages.SUCCESS
                )
                return redirect("admin:consortium_auditexport_change", export.pk)
        context = {
            **self.admin_site.each_context(request),
            "form": form,
            "title": "Ask for an audit export",
            "opts": self.model._meta,
            "submit_label": "Build the export",
            "changelist_url": reverse("admin:consortium_auditexport_changelist"),
            "changelist_name": "Audit exports",
        }
        return TemplateResponse(request, "admin/consortium/auditexport/ask.html", context)

    def file_view(self, request, pk):
        export = AuditExport.objects.filter(pk=pk).first()
        if export is None or not audit.may_read(request.user, export):
            raise Http404("no such audit export")
        if export.status != AuditExport.Status.DONE or not export.file:
            raise Http404("the export is not finished")
        return storage.attachment(
            export.file.name,
            filename=f"audit-{export.pk}.zip",
            content_type="application/zip",
            size=export.size,
        )
