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

        _forget_bearer_reads_on_change()


def _forget_bearer_reads_on_change() -> None:
    """A token, its user or a seat saved or deleted in this process: the bearer decisions
    kept for reads (consortium.governance.auth.recent_reads) are forgotten at once (the
    queryset updates that vacate seats call it themselves)."""
    from django.contrib.auth import get_user_model
    from django.db.models.signals import post_delete, post_save

    from consortium.governance.auth import forget_recent_reads
    from consortium.governance.models import ApiToken, Member, Seat, SeatHolder

    def forget(**_):
        forget_recent_reads()

    for model in (ApiToken, Member, Seat, SeatHolder, get_user_model()):
        post_save.connect(
            forget, sender=model, weak=False, dispatch_uid=f"bearer-reads-{model.__name__}"
        )
        post_delete.connect(
            forget, sender=model, weak=False, dispatch_uid=f"bearer-reads-x-{model.__name__}"
        )
