from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "consortium.webhooks"
    label = "webhooks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from consortium.webhooks import sending, tasks  # noqa: F401 (the tasks' names)
        from ledger.events import after_append

        after_append(sending.request_fan_out)
