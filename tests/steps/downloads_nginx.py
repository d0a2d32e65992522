"""A real nginx with the project's downloads snippet (deploy/nginx/downloads.conf) in front
of the application under gunicorn (``tests.steps.nginx.app_server``), for the tests and
the benchmark of downloads handed over with X-Accel-Redirect. Standard library only."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from tests.steps.nginx import ROOT, private_nginx

SNIPPET = ROOT / "deploy" / "nginx" / "downloads.conf"
# The location the snippet serves: the application's DOWNLOADS_ACCEL_REDIRECT.
PREFIX = "/_protected/checkpoints/"

CONF = """\
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    upstream consortium_app {{ server 127.0.0.1:{app_port}; keepalive 8; }}
    server {{
        listen 127.0.0.1:{port};
        set $checkpoints_root {checkpoints}/;
        include {prefix}/downloads.conf;
        location / {{
            proxy_pass http://consortium_app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
        }}
    }}
}}
"""


@contextlib.contextmanager
def downloads_nginx(media: Path, app_port: int) -> Iterator[str]:
    """nginx serving the checkpoints under ``media`` (MEDIA_ROOT) with
    deploy/nginx/downloads.conf, in front of the application on ``app_port``; yields its
    base URL. ``media`` must be readable by ``nobody`` when the caller is root."""
    with private_nginx(SNIPPET, CONF, app_port=app_port, checkpoints=media / "checkpoints") as port:
        yield f"http://127.0.0.1:{port}"
