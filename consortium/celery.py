"""The Celery application. Without CELERY_BROKER_URL, tasks run in-process."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "consortium.settings")

app = Celery("consortium")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Each domain keeps its tasks in its own ``tasks`` module.
app.autodiscover_tasks(
    [
        "ledger",
        "consortium.governance",
        "consortium.access",
        "consortium.audit",
        "consortium.web",
        "consortium.webhooks",
    ]
)
