"""The ASGI application: the events server (``GET /api/v1/ledger/events``, docs/events.md).

Run beside the WSGI workers, which serve everything else:
``gunicorn -k uvicorn_worker.UvicornWorker consortium.asgi:application`` (or
``uvicorn consortium.asgi:application``). It serves the whole site all the same."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "consortium.settings")

application = get_asgi_application()
