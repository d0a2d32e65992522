from django.apps import AppConfig


class ContributionsConfig(AppConfig):
    name = "contributions"
    verbose_name = "Contributions"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from contributions import services  # noqa: F401  (appliers, projections)
