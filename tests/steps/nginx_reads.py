"""A real nginx with the snippet of the hot reads (deploy/nginx/ledger-reads.conf) in
front of the application, and a directory of static files under ``/baseline/`` (what the
read benchmark compares with). Standard library only: bench/read_bench.py uses it too."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from tests.steps.nginx import ROOT, private_nginx

SNIPPET = ROOT / "deploy" / "nginx" / "ledger-reads.conf"
CONF = """\
worker_processes {workers};
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    # What nginx's cache did with each proof and checkpoint (HIT, MISS, ...), a word a
    # line: the read benchmark counts them.
    log_format cache_status $upstream_cache_status;
    access_log off;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    proxy_cache_path {prefix}/readers keys_zone=ledger_readers:1m max_size=16m inactive=1m use_temp_path=off;
    proxy_cache_path {prefix}/reads keys_zone=ledger_reads:10m max_size=256m inactive=10m use_temp_path=off;
    upstream consortium_app {{ server 127.0.0.1:{app_port}; }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location /baseline/ {{ root {static}; default_type text/plain; }}
        access_log {cache_log};
        include {prefix}/ledger-reads.conf;
        location / {{
            proxy_pass http://consortium_app;
            proxy_set_header Host $host;
        }}
    }}
}}
"""


@contextlib.contextmanager
def reads_nginx(
    app_port: int, static: Path, workers: int = 1, cache_log: Path | None = None
) -> Iterator[int]:
    """nginx with deploy/nginx/ledger-reads.conf in front of ``app_port``, serving
    ``static`` under /baseline/; yields its port. With ``cache_log``, what its cache did
    with each request goes there, a word a line (HIT, MISS, ..., or - when not cached)."""
    with private_nginx(
        SNIPPET,
        CONF,
        dirs=("tmp", "readers", "reads", "logs"),
        app_port=app_port,
        static=static,
        workers=workers,
        cache_log=f"{cache_log} cache_status buffer=64k flush=1s" if cache_log else "off",
    ) as port:
        yield port
