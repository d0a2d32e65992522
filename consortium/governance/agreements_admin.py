"""Agreements in the admin: proposing, signing and withdrawing through the services."""

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import CharField, Value
from django.http import FileResponse, Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, path, reverse
from django.utils.html import format_html

from consortium.governance import agreements, selectors
from consortium.governance.admin import SeatVisible
from consortium.governance.changes import refusals
from consortium.governance.documents import document_store
from consortium.governance.models import Agreement, AgreementParty
from ledger.admin import may_read_in
from ledger.display import time_column

# --- agreements ------------------------------------------------------------------------------


class AgreementPartyInline(admin.TabularInline):
    """Who has signed and who has not."""

    model = AgreementParty
    fields = [
        "member",
        "required",
        "signature",
        "signed_at_shown",
        "withdrawn_in",
        "withdrawal_reason",
    ]
    readonly_fields = fields
    signed_at_shown = time_column("signed_at", "signed at")
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
        return may_read_in(request)


class AwaitingSignatureFilter(admin.SimpleListFilter):
    title = "your member's signature"
    parameter_name = "awaiting"

    def lookups(self, request, model_admin):
        return [("yes", "awaiting your signature")] if selectors.acting_for(request.user) else []

    def queryset(self, request, queryset):
        if self.value() == "yes":
            pending = selectors.awaiting_signature(request.user).values("agreement_id")
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
        member = selectors.member_of(request.user)
        return (
            selectors.visible_agreements(request.user)
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
            "can_propose": selectors.acting_for(request.user) is not False,
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
        return "awaiting your signature" if obj.state in selectors.SIGNABLE_STATES else "-"

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
        agreement = selectors.visible_agreements(request.user).filter(id=pk).first()
        doc = agreement and selectors.readable_document(request.user, agreement.document_sha256)
        if not doc:
            raise Http404("no such document")
        response = FileResponse(
            doc.file.open("rb"), as_attachment=True, filename=doc.name, content_type=doc.media_type
        )
        response["X-Content-Type-Options"] = "nosniff"
        return response

    def propose_view(self, request):
        scope = selectors.acting_for(request.user)
        if scope is False:
            raise PermissionDenied
        amendable = selectors.visible_agreements(request.user).filter(
            state=Agreement.State.IN_FORCE
        )
        form = ProposeAgreementForm(
            request.POST or None, request.FILES or None, amendable=amendable
        )
        if request.method == "POST" and form.is_valid():
            d = form.cleaned_data
            upload = d["document"]
            with refusals(lambda message: form.add_error(None, message)):
                doc = document_store(
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
                with refusals(self.refused(request, agreement)):
                    agreements.agreement_sign(
                        actor=request.user,
                        agreement=agreement,
                        terms_sha256=request.POST.get(f"terms_{agreement.id}", ""),
                        document_sha256=request.POST.get(f"document_{agreement.id}", ""),
                    )
                    self.message_user(request, f"Signed {agreement}.", messages.SUCCESS)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Sign agreements",
            "agreements": queryset,
            "opts": self.model._meta,
            "acting_for": selectors.acting_for(request.user),
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/consortium/agreement/sign.html", context)

    @admin.action(description="Withdraw your member from the selected agreements")
    def withdraw(self, request, queryset):
        for agreement in queryset:
            with refusals(self.refused(request, agreement)):
                agreements.agreement_withdraw(
                    actor=request.user, agreement=agreement, reason="withdrawn in the admin"
                )
                self.message_user(request, f"Withdrew from {agreement}.", messages.SUCCESS)
