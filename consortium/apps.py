from django.apps import AppConfig
from django.utils.translation import gettext_lazy


class ConsortiumConfig(AppConfig):
    name = "consortium"
    verbose_name = gettext_lazy("Consortium")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The domains register their appliers, projections and submission handlers with
        # the ledger when their modules are imported; a worker or `ledger replay` loads no
        # URLconf, so every module that registers is imported here
        # (tests/test_architecture.py checks that none is missing).
        from consortium.access import checkpoints, downloads  # noqa: F401
        from consortium.governance import (  # noqa: F401
            agreement_checks,
            agreements,
            members,
            proposals,
            seats,
            votes,
            witnesses,
        )
