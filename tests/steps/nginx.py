"""A real nginx, with the project's tiles snippet (deploy/nginx/tiles.conf), in front of
the application served by gunicorn: each in its own process, on a free loopback port,
nginx with its own prefix and configuration in a temporary directory and, when the
caller is root, run as ``nobody``. Standard library only: the tiles benchmark uses it
too (bench/tiles_bench.py)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SNIPPET = ROOT / "deploy" / "nginx" / "tiles.conf"
INSTALL = "apt-get install -y nginx-light (see the README's requirements)"

CONF = """\
worker_processes {workers};
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
    proxy_cache_path {prefix}/cache keys_zone=ledger_readers:1m max_size=16m inactive=1m use_temp_path=off;
    upstream consortium_app {{ server 127.0.0.1:{app_port}; }}
    server {{
        listen 127.0.0.1:{port};
        set $tiles_root {tiles};
        include {prefix}/tiles.conf;
        location / {{
            proxy_pass http://consortium_app;
            proxy_set_header Host $host;
        }}
    }}
}}
"""


def nginx_binary() -> str:
    """The nginx to run; its absence is an error that says how to install it."""
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )
    if found is None:
        raise RuntimeError(f"nginx is not installed: {INSTALL}")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if process.poll() is not None:
                out = process.stdout.read() if process.stdout else ""
                raise RuntimeError(f"{what} exited with {process.returncode}: {out}") from None
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not listen on port {port}") from None
            time.sleep(0.1)


def readable_dir(prefix: str) -> Path:
    """A new temporary directory that an unprivileged nginx can read."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


def stop_process(process: subprocess.Popen) -> None:
    """Stop a server with SIGTERM (killed after 20 s), if it still runs."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def app_server(env: dict, *, workers: int = 2, shipped: bool = False) -> Iterator[int]:
    """gunicorn serving consortium.wsgi with ``env``; yields its port. ``shipped``: with
    deploy/gunicorn.conf.py (gthread workers, keep-alive, the garbage collector's freeze),
    else gunicorn's defaults (sync workers)."""
    port = free_port()
    config = ["-c", str(ROOT / "deploy" / "gunicorn.conf.py")] if shipped else []
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            *config,
            "consortium.wsgi",
            "--workers",
            str(workers),
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for_port(port, server, "gunicorn")
        yield port
    finally:
        stop_process(server)


def nginx_command(prefix: Path) -> list[str]:
    """nginx's command line for the configuration in ``prefix`` (in the foreground, its
    errors in the prefix); as ``nobody``, owning only its prefix, when the caller is
    root."""
    command = [nginx_binary(), "-p", str(prefix), "-c", str(prefix / "nginx.conf")]
    command += ["-e", str(prefix / "error.log"), "-g", "daemon off;"]
    if os.geteuid() == 0:
        # Never as root: nobody, owning only its own prefix.
        for path in [prefix, *prefix.rglob("*")]:
            os.chown(path, 65534, 65534)
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
    return command


@contextlib.contextmanager
def running_nginx(command: list[str], port: int) -> Iterator[int]:
    """nginx run by ``command``: checked with ``nginx -t`` first, listening on ``port``,
    stopped afterwards (SIGTERM: its master stops its workers)."""
    checked = subprocess.run([*command, "-t"], capture_output=True, text=True, check=False)
    if checked.returncode != 0:
        raise RuntimeError(f"nginx refused its configuration: {checked.stderr}")
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for_port(port, server, "nginx", seconds=20)
        yield port
    finally:
        stop_process(server)


@contextlib.contextmanager
def private_nginx(
    snippet: Path, conf: str, *, dirs: tuple[str, ...] = ("tmp", "logs"), **values
) -> Iterator[int]:
    """A private nginx: ``conf`` formatted with its ``prefix``, ``port`` and ``values``,
    the project's ``snippet`` copied beside it, ``dirs`` made in the prefix; checked with
    ``nginx -t``, run (as ``nobody`` when the caller is root) and stopped; yields its
    port."""
    prefix = readable_dir(f"nginx-{snippet.stem}-")
    try:
        for sub in dirs:
            (prefix / sub).mkdir()
        port = free_port()
        shutil.copyfile(snippet, prefix / snippet.name)
        (prefix / "nginx.conf").write_text(conf.format(prefix=prefix, port=port, **values))
        with running_nginx(nginx_command(prefix), port):
            yield port
    finally:
        shutil.rmtree(prefix, ignore_errors=True)


@contextlib.contextmanager
def nginx(tiles: Path, app_port: int, *, workers: int = 1) -> Iterator[str]:
    """nginx serving ``tiles`` with deploy/nginx/tiles.conf in front of the application on
    ``app_port``; yields its base URL. ``tiles`` and the directories above it must be
    readable by ``nobody`` when the caller is root (see :func:`readable_dir`)."""
    with private_nginx(
        SNIPPET,
        CONF,
        dirs=("tmp", "cache", "logs"),
        app_port=app_port,
        tiles=tiles,
        workers=workers,
    ) as port:
        yield f"http://127.0.0.1:{port}"
