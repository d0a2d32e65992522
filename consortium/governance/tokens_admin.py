"""API tokens in the admin: a seat holder's tokens for its partner systems, made and
revoked by the seat holder after a recent second factor."""

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.validators import MaxValueValidator
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from consortium.governance import selectors, tokens
from consortium.governance.changes import refusals
from consortium.governance.models import ApiToken
from consortium.web.stepup import stepup_required


class NewTokenForm(forms.Form):
    name = forms.CharField(
        label=gettext_lazy("Name"),
        max_length=100,
        help_text=gettext_lazy("What the token is for: the partner system that will use it."),
    )
    days = forms.IntegerField(
        label=gettext_lazy("Expires in (days)"),
        min_value=1,
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["days"].help_text = _("At most %(max)s days.") % {
            "max": settings.API_TOKEN_MAX_DAYS
        }
        self.fields["days"].max_value = settings.API_TOKEN_MAX_DAYS
        self.fields["days"].validators.append(MaxValueValidator(settings.API_TOKEN_MAX_DAYS))
        self.fields["days"].initial = settings.API_TOKEN_DEFAULT_DAYS


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """A seat holder's tokens for its partner systems: listed (never their secrets),
    made with "New token" (shown once) and revoked, each after a recent second factor,
    through the services of ``consortium.governance.tokens`` (as ``manage.py apitoken``).
    The secretariat and superusers see and revoke every token."""

    list_display = [
        "name",
        "key_id",
        "user",
        "seat",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
        "revoke_link",
    ]
    list_filter = ["revoked_at"]
    search_fields = ["key_id", "user__username", "name"]
    list_select_related = ["user", "seat", "seat__member"]
    readonly_fields = [
        "user",
        "seat",
        "name",
        "key_id",
        "created_at",
        "expires_at",
        "revoked_at",
        "last_used_at",
    ]
    exclude = ["secret_hash"]
    actions = None

    def _may_use(self, request) -> bool:
        user = request.user
        if not getattr(request, "_token_holder_checked", False):
            # Asked several times while one page is drawn (the app list, the views).
            request._token_holder = user.is_active and (
                user.is_superuser or selectors.holds_a_seat(user)
            )
            request._token_holder_checked = True
        return request._token_holder

    def has_module_permission(self, request):
        return self._may_use(request)

    def has_view_permission(self, request, obj=None):
        if not self._may_use(request):
            return False
        return obj is None or tokens.visible_tokens(request.user).filter(pk=obj.pk).exists()

    def has_add_permission(self, request):
        return self._may_use(request)

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return tokens.visible_tokens(request.user)

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("new/", wrap(self.new_view), name="consortium_apitoken_new"),
            path("<int:pk>/revoke/", wrap(self.revoke_view), name="consortium_apitoken_revoke"),
            *super().get_urls(),
        ]

    def add_view(self, request, form_url="", extra_context=None):
        return redirect("admin:consortium_apitoken_new")

    @admin.display(description=gettext_lazy("revoke"))
    def revoke_link(self, obj):
        if obj.revoked_at is not None:
            return "-"
        url = reverse("admin:consortium_apitoken_revoke", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, _("Revoke…"))

    def _context(self, request, title, **extra):
        return {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": title,
            "changelist_url": reverse("admin:consortium_apitoken_changelist"),
            **extra,
        }

    @stepup_required
    def new_view(self, request):
        if not self._may_use(request):
            raise PermissionDenied
        form = NewTokenForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            with refusals(lambda message: form.add_error(None, message)):
                token, plaintext = tokens.token_issue(
                    actor=request.user,
                    user=request.user,
                    name=form.cleaned_data["name"],
                    days=form.cleaned_data["days"],
                )
                # Shown in this response only: only the secret's hash is stored.
                context = self._context(
                    request, _("Your new API token"), token=token, plaintext=plaintext
                )
                return TemplateResponse(request, "admin/consortium/apitoken/created.html", context)
        context = self._context(
            request,
            _("New API token"),
            form=form,
            seat=selectors.seat_of(request.user),
        )
        return TemplateResponse(request, "admin/consortium/apitoken/new.html", context)

    @stepup_required
    def revoke_view(self, request, pk):
        token = tokens.visible_tokens(request.user).filter(pk=pk).first()
        if token is None or not self._may_use(request):
            raise Http404("no such token")
        if request.method == "POST":
            with refusals(lambda message: self.message_user(request, message, messages.ERROR)):
                tokens.token_revoke(actor=request.user, token=token)
                self.message_user(
                    request,
                    _("Revoked the token %(name)s (%(key)s).")
                    % {"name": token.name or "-", "key": token.key_id},
                    messages.SUCCESS,
                )
            return redirect("admin:consortium_apitoken_changelist")
        context = self._context(request, _("Revoke an API token"), token=token)
        return TemplateResponse(request, "admin/consortium/apitoken/revoke.html", context)
