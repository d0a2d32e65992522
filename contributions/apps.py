from django.apps import AppConfig


class ContributionsConfig(AppConfig):
    name = "contributions"
    verbose_name = "Contributions"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The appliers, the checks of client-signed entries and the projections.
        from contributions import compute, data, disputes, facilities, funds  # noqa: F401
