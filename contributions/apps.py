from django.apps import AppConfig
from django.utils.translation import gettext_lazy


class ContributionsConfig(AppConfig):
    name = "contributions"
    verbose_name = gettext_lazy("Contributions")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The appliers, the checks of client-signed entries and the projections.
        from contributions import compute, data, disputes, facilities, funds  # noqa: F401
