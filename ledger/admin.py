"""The log in the admin: visible and searchable, never addable, changeable or deletable;
and the scheduled verification's runs."""

from __future__ import annotations

import json

from django.contrib import admin
from django.core.paginator import Paginator
from django.db.models import Q
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.translation import gettext, gettext_lazy

from ledger.display import when
from ledger.models import (
    Checkpoint,
    Cosignature,
    Entry,
    Key,
    VerificationRun,
    Witness,
    WitnessAlarm,
    WitnessContact,
    WitnessPolicy,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    """The shared record: every member's delegates may read it, no one may change it."""

    def has_module_permission(self, request):
        return may_read_in(request)

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def may_read_ledger(user) -> bool:
    """Superusers, and whoever the project's reader check admits (a seat holder)."""
    return user.is_active and (user.is_superuser or _holds_a_seat(user))


def may_read_in(request) -> bool:
    """Whether the request's user reads the shared record: asked once a request (the
    admin asks it for every model of its index and sidebar, a query each)."""
    cached = getattr(request, "_may_read_ledger", None)
    if cached is None:
        cached = request.user.is_superuser or _holds_a_seat(request.user)
        request._may_read_ledger = cached
    return cached


def _holds_a_seat(user) -> bool:
    # The ledger app knows nothing of governance; it asks the project's access hook.
    from django.conf import settings
    from django.utils.module_loading import import_string

    hook = getattr(settings, "LEDGER_READER_CHECK", None)
    return bool(hook) and import_string(hook)(user)


class KindFilter(admin.SimpleListFilter):
    title = gettext_lazy("kind")
    parameter_name = "kind"

    def lookups(self, request, model_admin):
        kinds = Entry.objects.order_by("kind").values_list("kind", flat=True).distinct()
        return [(k, k) for k in kinds]

    def queryset(self, request, queryset):
        return queryset.filter(kind=self.value()) if self.value() else queryset


class LogPaginator(Paginator):
    """The entries list without a filter holds the whole log: its count is the log's
    size (the largest index, from the primary key's index), not a COUNT(*) of every row."""

    @cached_property
    def count(self) -> int:
        query = getattr(self.object_list, "query", None)
        if query is not None and not query.where:
            from ledger.proofs import tree_size

            return tree_size()
        return super().count


@admin.register(Entry)
class EntryAdmin(ReadOnlyAdmin):
    list_display = ["index", "kind", "entry_id", "author_short", "signed_at", "integrated_at"]
    list_filter = [KindFilter]
    search_fields = ["kind"]  # see get_search_results
    search_help_text = gettext_lazy(
        "An index, a kind, an entry id or the start of an author fingerprint."
    )
    show_full_result_count = False
    # The change list pages by index; counting millions of rows on every page is waste.
    list_per_page = 100
    paginator = LogPaginator
    fields = [
        "index",
        "entry_id",
        "kind",
        "author",
        "signed_at",
        "integrated_at",
        "payload_pretty",
        "leaf_hash_hex",
    ]
    readonly_fields = fields

    def get_search_results(self, request, queryset, search_term):
        """A number finds that index; text finds a kind, an entry id or an author prefix."""
        term = search_term.strip()
        if not term:
            return queryset, False
        match = Q(kind=term) | Q(entry_id=term) | Q(author__startswith=term.lower())
        # A number is also an index (a hex author prefix can be all digits too).
        if term.isascii() and term.isdigit() and len(term) <= 16:
            match |= Q(index=int(term))
        return queryset.filter(match), False

    @admin.display(description=gettext_lazy("author"))
    def author_short(self, obj):
        return format_html("<code>{}…</code>", obj.author[:16])

    # A damaged leaf (what an operator looks at after a verification alarm) is shown as
    # such, never a server error.
    @admin.display(description=gettext_lazy("time"))
    def signed_at(self, obj):
        return _from_leaf(lambda: when(obj.time))

    @admin.display(description=gettext_lazy("integrated time"))
    def integrated_at(self, obj):
        return _from_leaf(lambda: when(obj.integrated_time))

    @admin.display(description=gettext_lazy("payload"))
    def payload_pretty(self, obj):
        return _from_leaf(
            lambda: format_html(
                "<pre>{}</pre>", json.dumps(obj.payload, indent=2, ensure_ascii=False)
            )
        )

    @admin.display(description=gettext_lazy("leaf hash"))
    def leaf_hash_hex(self, obj):
        return format_html("<code>{}</code>", bytes(obj.leaf_hash).hex())


@admin.register(Checkpoint)
class CheckpointAdmin(ReadOnlyAdmin):
    list_display = ["tree_size", "root_b64", "published_at"]
    search_fields = ["=tree_size"]
    fields = ["tree_size", "published_at", "note_pre"]

    @admin.display(description=gettext_lazy("signed note"))
    def note_pre(self, obj):
        return format_html("<pre>{}</pre>", obj.note)

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        if not (term.isascii() and term.isdigit() and len(term) <= 16):
            return queryset.none(), False
        return queryset.filter(tree_size=int(term)), False


@admin.register(Key)
class KeyAdmin(ReadOnlyAdmin):
    list_display = ["fingerprint_short", "kind", "owner", "custody", "valid_from", "revoked_at"]
    list_filter = ["kind", "custody"]
    search_fields = ["fingerprint", "owner", "name"]
    fields = [
        "fingerprint",
        "kind",
        "owner",
        "custody",
        "name",
        "public_key_b64",
        "verifier_key",
        "registered_in",
        "valid_from",
        "revoked_at",
    ]

    @admin.display(description=gettext_lazy("fingerprint"))
    def fingerprint_short(self, obj):
        return format_html("<code>{}…</code>", obj.fingerprint[:16])


@admin.register(VerificationRun)
class VerificationRunAdmin(ReadOnlyAdmin):
    """The scheduled verification's runs: where each got to, and what failed."""

    list_display = ["finished_at", "ok", "first", "size", "checkpoints", "failed_index", "reason"]
    list_filter = ["ok"]
    fields = [
        "started_at",
        "finished_at",
        "ok",
        "first",
        "size",
        "checkpoints",
        "failed_index",
        "reason",
        "failures",
    ]
    readonly_fields = fields


@admin.register(Witness)
class WitnessAdmin(ReadOnlyAdmin):
    """The members' witnesses, as their entries registered them, and where each stands."""

    list_display = [
        "name",
        "member",
        "url",
        "registered_in",
        "retired_in",
        "last_size",
        "last_contact",
        "last_error",
        "alarms",
    ]
    list_filter = ["member"]
    search_fields = ["name", "member", "url"]
    fields = [
        "name",
        "member",
        "url",
        "vkey",
        "mldsa_vkey",
        "registered_in",
        "retired_in",
        "last_size",
        "last_contact",
        "last_error",
        "alarms",
    ]
    readonly_fields = fields

    def _contact(self, obj):
        return WitnessContact.objects.filter(witness=obj.name).first()

    @admin.display(description=gettext_lazy("last cosigned size"))
    def last_size(self, obj):
        contact = self._contact(obj)
        return contact.last_size if contact else None

    @admin.display(description=gettext_lazy("last contact"))
    def last_contact(self, obj):
        contact = self._contact(obj)
        return contact.last_contact if contact else None

    @admin.display(description=gettext_lazy("last error"))
    def last_error(self, obj):
        contact = self._contact(obj)
        return contact.last_error if contact else ""

    @admin.display(description=gettext_lazy("alarms"))
    def alarms(self, obj):
        return WitnessAlarm.objects.filter(witness=obj.name).count()


@admin.register(WitnessPolicy)
class WitnessPolicyAdmin(ReadOnlyAdmin):
    list_display = ["adopted_in", "first_line"]
    fields = ["adopted_in", "text_pre"]
    readonly_fields = fields

    @admin.display(description=gettext_lazy("quorum"))
    def first_line(self, obj):
        quorum = [
            line.strip() for line in obj.text.split("\n") if line.strip().startswith("quorum")
        ]
        return quorum[0] if quorum else ""

    @admin.display(description=gettext_lazy("policy"))
    def text_pre(self, obj):
        return format_html("<pre>{}</pre>", obj.text)


@admin.register(Cosignature)
class CosignatureAdmin(ReadOnlyAdmin):
    list_display = ["checkpoint", "witness", "key_id", "timestamp", "received_at"]
    list_filter = ["witness"]
    search_fields = ["=checkpoint__tree_size", "witness"]
    fields = ["checkpoint", "witness", "key_id", "timestamp", "received_at", "line"]
    readonly_fields = fields


@admin.register(WitnessAlarm)
class WitnessAlarmAdmin(ReadOnlyAdmin):
    """Every 422 and every witness ahead of the log: each a possible fork or rollback."""

    list_display = ["raised_at", "witness", "kind", "log_size", "witness_size", "detail"]
    list_filter = ["kind", "witness"]
    fields = ["raised_at", "witness", "kind", "log_size", "witness_size", "detail"]
    readonly_fields = fields


def _from_leaf(read):
    try:
        return read()
    except (ValueError, KeyError, TypeError) as exc:
        return format_html(
            "<strong>{}</strong> ({})", gettext("unreadable leaf"), type(exc).__name__
        )
