"""The site of deploy/nginx/ rendered for a temporary prefix and run by a real nginx: the
files as shipped, with only the deployment's paths, ports and certificates replaced (the
same replacements for every file, listed in ``site_files``)."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

from tests.steps.nginx import free_port, nginx_command, readable_dir, running_nginx

ROOT = Path(__file__).resolve().parents[2]
NGINX = ROOT / "deploy" / "nginx"
# The snippet another part of the deployment provides (the internal location checked
# downloads are handed to); a checkout without it renders the site without its include.
DOWNLOADS = NGINX / "downloads.conf"

MAIN = """\
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 256; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log {prefix}/logs/access.log;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    include {prefix}/snippets/{site};
}}
"""


def site_files(prefix: Path, replacements: dict[str, str]) -> None:
    """Every file of deploy/nginx/ into ``prefix``/snippets, with ``replacements`` made."""
    snippets = prefix / "snippets"
    snippets.mkdir(parents=True, exist_ok=True)
    replacements = {
        "/etc/nginx/snippets/consortium/": f"{snippets}/",
        "/var/cache/nginx/": f"{prefix}/cache/",
        "/var/log/nginx/": f"{prefix}/logs/",
        **replacements,
    }
    for source in NGINX.glob("*.conf"):
        text = source.read_text()
        for old, new in replacements.items():
            text = text.replace(old, new)
        (snippets / source.name).write_text(text)


def prepared(site: str, replacements: dict[str, str]) -> tuple[Path, list[str]]:
    """A prefix holding the site and nginx's command line for it (as nobody when root)."""
    prefix = readable_dir("nginx-site-")
    for sub in ("tmp", "cache", "logs"):
        (prefix / sub).mkdir()
    site_files(prefix, replacements)
    (prefix / "nginx.conf").write_text(MAIN.format(prefix=prefix, site=site))
    return prefix, nginx_command(prefix)


def test_config(site: str, replacements: dict[str, str]) -> subprocess.CompletedProcess:
    """``nginx -t`` on the rendered site."""
    prefix, command = prepared(site, replacements)
    try:
        return subprocess.run([*command, "-t"], capture_output=True, text=True, check=False)
    finally:
        shutil.rmtree(prefix, ignore_errors=True)


test_config.__test__ = False  # a helper, not a test


@contextlib.contextmanager
def loopback_site(
    app_port: int, static: Path, tiles: Path, media: Path
) -> Iterator[tuple[str, Path]]:
    """nginx with consortium-loopback.conf in front of gunicorn on ``app_port``; yields its
    base URL and the directory of its logs. ``media`` is MEDIA_ROOT, which the deployment
    keeps in /var/lib/consortium/media."""
    port = free_port()
    prefix, command = prepared(
        "consortium-loopback.conf",
        {
            "listen 127.0.0.1:8080;": f"listen 127.0.0.1:{port};",
            "server 127.0.0.1:8000;": f"server 127.0.0.1:{app_port};",
            "/var/lib/consortium/static/": f"{static}/",
            "/var/lib/consortium/tlog": str(tiles),
            "/var/lib/consortium/media": str(media),
        },
    )
    try:
        with running_nginx(command, port):
            yield f"http://127.0.0.1:{port}", prefix / "logs"
    finally:
        shutil.rmtree(prefix, ignore_errors=True)
