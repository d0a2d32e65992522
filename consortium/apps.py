from django.apps import AppConfig


class ConsortiumConfig(AppConfig):
    name = "consortium"
    verbose_name = "Consortium"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from consortium import (  # noqa: F401  (appliers, projections, OpenAPI extension)
            agreements,
            checkpoints,
            downloads,
            governance,
            proposals,
            schema,
        )
