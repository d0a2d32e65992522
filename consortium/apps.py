from django.apps import AppConfig


class ConsortiumConfig(AppConfig):
    name = "consortium"
    verbose_name = "Consortium"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        pass
