"""The stock admins of accounts and of authenticator apps, with the dates the system
records shown read-only: nobody types them, and the admin's split date-and-time widget
gives its two boxes no label that a screen reader announces (axe-core: "Form elements must
have labels")."""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django_otp.plugins.otp_totp.admin import TOTPDeviceAdmin
from django_otp.plugins.otp_totp.models import TOTPDevice

User = get_user_model()


class AccountAdmin(UserAdmin):
    readonly_fields = [*UserAdmin.readonly_fields, "last_login", "date_joined"]


class AuthenticatorAppAdmin(TOTPDeviceAdmin):
    readonly_fields = [*TOTPDeviceAdmin.readonly_fields, "throttling_failure_timestamp"]


for model, model_admin in ((User, AccountAdmin), (TOTPDevice, AuthenticatorAppAdmin)):
    if admin.site.is_registered(model):
        admin.site.unregister(model)
    admin.site.register(model, model_admin)
