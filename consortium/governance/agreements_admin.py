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
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from consortium.governance import agreements, in_words, selectors
from consortium.governance.admin import SeatVisible
from consortium.governance.changes import member_hosted_key, refusals
from consortium.governance.documents import document_store
from consortium.governance.models import Agreement, Member
from consortium.web.stepup import stepup_required

# --- agreements ------------------------------------------------------------------------------


class AwaitingSignatureFilter(admin.SimpleListFilter):
    title = gettext_lazy("your member's signature")
    parameter_name = "awaiting"

    def lookups(self, request, model_admin):
        return [("yes", _("awaiting your signature"))] if selectors.acting_for(request.user) else []

    def queryset(self, request, queryset):
        if self.value() == "yes":
            pending = selectors.awaiting_signature(request.user).values("agreement_id")
            return queryset.filter(id__in=pending)
        return queryset


class ProposeAgreementForm(forms.Form):
    kind = forms.ChoiceField(choices=Agreement.Kind.choices)
    title = forms.CharField(max_length=300)
    document = forms.FileField(
        help_text=gettext_lazy("The signed text; its SHA-256 goes on the ledger.")
    )
    terms = forms.JSONField(
        widget=forms.Textarea(attrs={"rows": 18, "cols": 90, "class": "vLargeTextField"}),
        help_text=gettext_lazy("Structured terms as JSON (see docs/agreements.md)."),
    )
    supersedes = forms.ModelChoiceField(
        queryset=Agreement.objects.none(),
        required=False,
        help_text=gettext_lazy(
            "The agreement in force this version amends (empty: a new agreement)."
        ),
    )

    def __init__(self, *args, amendable, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["supersedes"].queryset = amendable


@admin.register(Agreement)
class AgreementAdmin(SeatVisible):
    """A delegate sees its member's agreements, those awaiting its signature first. The
    agreement's page reads as a document; signing and withdrawing are done from it, each
    after a confirmation page, through the services."""

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
            path("<uuid:pk>/sign/", view(self.sign_view), name="consortium_agreement_sign"),
            path(
                "<uuid:pk>/withdraw/",
                view(self.withdraw_view),
                name="consortium_agreement_withdraw",
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra = {
            "can_propose": selectors.acting_for(request.user) is not False,
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra)

    @admin.display(description=gettext_lazy("signed"))
    def signatures(self, obj):
        parties = list(obj.parties.all())
        signed = sum(1 for p in parties if p.signed_in is not None and p.withdrawn_in is None)
        return f"{signed} of {len(parties)}"

    @admin.display(description=gettext_lazy("your member"))
    def your_signature(self, obj):
        party = next((p for p in obj.parties.all() if p.member_id == obj.my_member), None)
        if party is None:
            return "-"
        if party.withdrawn_in is not None:
            return _("withdrawn")
        if party.signed_in is not None:
            return _("signed")
        return _("awaiting your signature") if obj.state in selectors.SIGNABLE_STATES else "-"

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
                self.message_user(
                    request,
                    _("Proposed %(agreement)s for signature.") % {"agreement": agreement},
                    messages.SUCCESS,
                )
                return redirect("admin:consortium_agreement_change", agreement.id)
        context = {
            **self.admin_site.each_context(request),
            "form": form,
            "acting_for": scope,
            "title": _("Propose an agreement"),
            "opts": self.model._meta,
            "submit_label": _("Propose for signature"),
            "changelist_url": reverse("admin:consortium_agreement_changelist"),
            "changelist_name": _("Agreements"),
        }
        return TemplateResponse(request, "admin/consortium/agreement/propose.html", context)

    # --- the agreement as a document, and signing and withdrawing from it ---------------

    def change_view(self, request, object_id, form_url="", extra_context=None):
        agreement = self.get_object(request, object_id)
        if agreement is None or not self.has_view_permission(request, agreement):
            raise Http404(_("no such agreement"))
        member = selectors.acting_for(request.user)
        party = agreement.parties.filter(member_id=member).first() if member else None
        context = {
            **self._document_context(request, agreement),
            "title": agreement.title,
            "may_sign": in_words.may_sign(request.user, agreement),
            "may_withdraw": party is not None
            and party.withdrawn_in is None
            and agreement.state in selectors.SIGNABLE_STATES,
            "cost_shares_url": self._cost_shares_url(agreement),
            "terms_json": json.dumps(agreement.terms, indent=2, ensure_ascii=False),
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/consortium/agreement/document.html", context)

    def _document_context(self, request, agreement):
        return {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": agreement,
            "agreement": agreement,
            "words": in_words.agreement_in_words(agreement),
            "proposed_at": in_words.entry_time(agreement.proposed_in),
            "document_url": reverse("admin:consortium_agreement_document", args=[agreement.id]),
        }

    @staticmethod
    def _cost_shares_url(agreement):
        if "cost_sharing" not in agreement.terms:
            return None
        try:
            return reverse("contributions_cost_shares", args=[agreement.id])
        except NoReverseMatch:
            return None

    def _party_of(self, request, pk):
        """The agreement and the requesting signatory's member, which must be a party:
        anyone else is refused before anything is shown or written."""
        agreement = selectors.visible_agreements(request.user).filter(id=pk).first()
        if agreement is None:
            raise Http404(_("no such agreement"))
        member = selectors.acting_for(request.user)
        if not member or not agreement.parties.filter(member_id=member).exists():
            raise PermissionDenied
        return agreement, member

    @stepup_required
    def sign_view(self, request, pk):
        """What is being signed, in words and by its exact hashes; POST signs those
        hashes (if the agreement changed meanwhile, nothing is signed)."""
        agreement, member = self._party_of(request, pk)
        page = redirect("admin:consortium_agreement_change", agreement.id)
        if not in_words.may_sign(request.user, agreement):
            self.message_user(
                request,
                _(
                    "%(member)s cannot sign %(agreement)s: it has signed or withdrawn, or the "
                    "agreement is %(state)s."
                )
                % {
                    "member": member,
                    "agreement": agreement,
                    "state": agreement.get_state_display(),
                },
                messages.WARNING,
            )
            return page
        if request.method == "POST":
            with refusals(self.refused(request, agreement)):
                party = agreements.agreement_sign(
                    actor=request.user,
                    agreement=agreement,
                    terms_sha256=request.POST.get("terms_sha256", ""),
                    document_sha256=request.POST.get("document_sha256", ""),
                )
                self.message_user(
                    request,
                    _("Signed %(agreement)s for %(member)s: ledger entry %(index)s.")
                    % {"agreement": agreement, "member": member, "index": party.signed_in},
                    messages.SUCCESS,
                )
            return page
        context = {
            **self._document_context(request, agreement),
            "title": _("Sign %(agreement)s") % {"agreement": agreement},
            "member": member,
            "member_name": _member_name(member),
            "key": member_hosted_key(member),
        }
        return TemplateResponse(request, "admin/consortium/agreement/sign.html", context)

    @stepup_required
    def withdraw_view(self, request, pk):
        """The member leaves the agreement, with a reason, after a confirmation."""
        agreement, member = self._party_of(request, pk)
        page = redirect("admin:consortium_agreement_change", agreement.id)
        form = WithdrawForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            with refusals(self.refused(request, agreement)):
                party = agreements.agreement_withdraw(
                    actor=request.user, agreement=agreement, reason=form.cleaned_data["reason"]
                )
                self.message_user(
                    request,
                    _("%(member)s withdrew from %(agreement)s: ledger entry %(index)s.")
                    % {"member": member, "agreement": agreement, "index": party.withdrawn_in},
                    messages.SUCCESS,
                )
            return page
        context = {
            **self._document_context(request, agreement),
            "title": _("Withdraw from %(agreement)s") % {"agreement": agreement},
            "member": member,
            "member_name": _member_name(member),
            "key": member_hosted_key(member),
            "form": form,
        }
        return TemplateResponse(request, "admin/consortium/agreement/withdraw.html", context)

    # The list's actions only lead to the agreement's own confirmation page: nothing is
    # signed or withdrawn from the list without it.
    def _one(self, request, queryset, url_name):
        if queryset.count() != 1:
            self.message_user(
                request,
                _(
                    "Choose one agreement: each is signed or left from its own page, after "
                    "reading what it says."
                ),
                messages.WARNING,
            )
            return None
        return redirect(url_name, queryset.get().id)

    @admin.action(description=gettext_lazy("Sign the selected agreement (asks to confirm)"))
    def sign(self, request, queryset):
        return self._one(request, queryset, "admin:consortium_agreement_sign")

    @admin.action(
        description=gettext_lazy("Withdraw from the selected agreement (asks to confirm)")
    )
    def withdraw(self, request, queryset):
        return self._one(request, queryset, "admin:consortium_agreement_withdraw")


class WithdrawForm(forms.Form):
    reason = forms.CharField(
        max_length=300,
        label=gettext_lazy("Reason"),
        help_text=gettext_lazy("Goes on the ledger with the withdrawal, for every member to read."),
    )


def _member_name(code: str) -> str:
    member = Member.objects.filter(code=code).first()
    return member.name if member is not None else code
