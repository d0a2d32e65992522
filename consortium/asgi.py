"""The ASGI application: the events server (``GET /api/v1/ledger/events``, docs/events.md).

Run beside the WSGI workers, which serve everything else:
``gunicorn -k uvicorn_worker.UvicornWorker consortium.asgi:application`` (or
``uvicorn consortium.asgi:application``). It serves the whole site all the same."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "consortium.settings")
# Django's async mode runs each piece of database work on a thread of its own choosing, so
# a connection kept after a request (CONN_MAX_AGE) is one more idle connection per thread,
# never reused as the WSGI workers reuse theirs; Django's documentation asks for
# persistent connections to be off in async mode. The events server's streams hold one
# LISTEN connection between them (ledger.events.feed) and close what else they open.
os.environ["CONN_MAX_AGE"] = "0"

application = get_asgi_application()
