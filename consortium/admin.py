from django.contrib import admin, messages

from consortium import governance
from consortium.models import ApiToken, Consortium, Member, Seat


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are issued with `manage.py apitoken create`; here they can be seen and revoked."""

    list_display = [
        "key_id",
        "user",
        "name",
        "created_at",
        "expires_at",
        "revoked_at",
        "last_used_at",
    ]
    list_filter = ["revoked_at"]
    search_fields = ["key_id", "user__username", "name"]
    list_select_related = ["user"]
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

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset):
        count = 0
        for token in queryset.filter(revoked_at__isnull=True):
            token.revoke()
            count += 1
        self.message_user(request, f"Revoked {count} token(s).", messages.SUCCESS)


# --- governance (projections: visible, never editable here) ------------------------------


class SeatVisible(admin.ModelAdmin):
    """Read-only for every seat holder (and superusers); writes go through the services."""

    def has_module_permission(self, request):
        return request.user.is_superuser or governance.seat_of(request.user) is not None

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


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


@admin.register(Seat)
class SeatAdmin(SeatVisible):
    """A delegate sees its own member's seats; the secretariat and auditors see all."""

    list_display = ["id", "member", "role", "assigned_in", "vacated_in"]
    list_filter = ["role"]
    list_select_related = ["member"]
    readonly_fields = ["id", "member", "role", "assigned_in", "vacated_in"]

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        visible = governance.visible_members_of(request.user)
        return qs if visible is None else qs.filter(member__in=visible)
