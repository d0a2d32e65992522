from django.apps import AppConfig
from django.utils.translation import gettext_lazy


class LedgerConfig(AppConfig):
    name = "ledger"
    verbose_name = gettext_lazy("Ledger")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from ledger import (  # noqa: F401  (key appliers; handlers for submitted key entries)
            appliers,
            submissions,
        )
