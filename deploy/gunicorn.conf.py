"""gunicorn's configuration: ``gunicorn -c deploy/gunicorn.conf.py consortium.wsgi``.

Every value comes from the environment (docs/deployment.md lists them), with defaults
for a small server behind nginx on the same machine.
"""

from __future__ import annotations

import os
import shutil
import tempfile

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
# gthread: a worker's threads share its process, and its main thread keeps answering the
# arbiter while another streams a large download (the app sends the bytes itself unless
# DOWNLOADS_ACCEL_REDIRECT hands them to nginx), so `timeout` only ends a stuck worker.
worker_class = "gthread"
workers = int(os.environ.get("GUNICORN_WORKERS", os.environ.get("WEB_CONCURRENCY", "2")))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
# nginx keeps connections to the upstream open only briefly.
keepalive = 5
# A worker is replaced after this many requests (0: never), spread by the jitter.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "0"))
max_requests_jitter = max(1, max_requests // 10) if max_requests else 0
# Not preloaded: each worker imports the application after the fork, so no database
# connection, ledger group-commit thread or broker connection is made in the master and
# shared by the workers; a reload (HUP) then loads new code.
preload_app = False
# No control socket (gunicorn 25.1+): nothing here uses it, and every gunicorn of a user
# would share its default path.
control_socket_disable = True
# Only nginx on this machine speaks to gunicorn; it sets X-Forwarded-* (the application
# reads them as TRUSTED_PROXY_COUNT and SECURE_PROXY_SSL say, never gunicorn).
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1,::1")

# The application writes one line per request, with its id, route and duration
# (consortium.web.logging); gunicorn's own access log would say it twice, and with the
# path. GUNICORN_ACCESS_LOG=- turns it on (to stdout).
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
if os.environ.get("LOG_FORMAT", "plain").strip().lower() == "json":
    # gunicorn's own lines (workers started, stopped, timed out) as JSON too.
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "consortium.web.logging.JsonFormatter"}},
        "handlers": {
            "error_console": {"class": "logging.StreamHandler", "formatter": "json"},
            "console": {"class": "logging.StreamHandler", "formatter": "json"},
        },
        "loggers": {
            "gunicorn.error": {"handlers": ["error_console"], "level": loglevel.upper()},
            # With a logging configuration gunicorn always writes its access lines: here
            # they go nowhere unless GUNICORN_ACCESS_LOG asks for them.
            "gunicorn.access": (
                {"handlers": ["console"], "level": "INFO", "propagate": False}
                if accesslog
                else {"handlers": [], "level": "CRITICAL", "propagate": False}
            ),
        },
    }

# Prometheus in multiprocess mode: each worker writes its counters to files in this
# directory, and a scrape of any worker adds them up. It must be set before a worker
# imports prometheus_client, so it is set here, in the master; it is emptied when gunicorn
# starts, since files left by a previous run would be counted again.
_made_metrics_dir = False
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="consortium-metrics-")
    _made_metrics_dir = True


def on_starting(server):
    path = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):
        if name.endswith(".db"):
            os.unlink(os.path.join(path, name))


def post_worker_init(worker):
    """Once a worker has loaded the application: its modules, settings and URL patterns
    live as long as the worker, so they are moved out of the garbage collector's way (a
    full collection no longer walks them, a pause of several milliseconds in the middle
    of a request)."""
    import gc

    gc.collect()
    gc.freeze()


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if _made_metrics_dir:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
