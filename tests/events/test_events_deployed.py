"""The events server as deployed: the command of deploy/systemd/consortium-events.service
(gunicorn with uvicorn's worker) behind a real nginx with deploy/nginx/events.conf. Events
come through nginx as they are appended (no buffering), and a stop with streams open ends
within the unit's graceful timeout."""

from __future__ import annotations

import shlex
import subprocess
import sys
import time

import pytest
from django.contrib.auth import get_user_model

from consortium.governance.models import ApiToken
from ledger import services
from ledger.keys import log_signer
from tests.events.servers import ROOT, Stream
from tests.steps.ledger import child_env
from tests.steps.nginx import free_port, private_nginx, stop_process, wait_for_port

pytestmark = pytest.mark.slow

UNIT = ROOT / "deploy" / "systemd" / "consortium-events.service"
SNIPPET = ROOT / "deploy" / "nginx" / "events.conf"
CONF = """\
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    upstream consortium_events {{ server 127.0.0.1:{events_port}; }}
    server {{
        listen 127.0.0.1:{port};
        include {prefix}/events.conf;
        location / {{ return 404; }}
    }}
}}
"""


def unit_command(port: int) -> list[str]:
    """The unit's ExecStart, with this interpreter's gunicorn and a free port."""
    text = UNIT.read_text().replace("\\\n", " ")
    line = next(x for x in text.splitlines() if x.startswith("ExecStart="))
    args = shlex.split(line.removeprefix("ExecStart="))
    assert args[0].endswith("/gunicorn")
    args = [sys.executable, "-m", "gunicorn", *args[1:]]
    args[args.index("--bind") + 1] = f"127.0.0.1:{port}"
    return args


def test_events_come_through_nginx_as_appended_and_a_stop_ends_open_streams(committed_db):
    services.ledger_init()
    _, signer = services.key_register(signer=log_signer(), kind="service", owner="FR", name="fr")
    reader = get_user_model().objects.create_superuser("events-deployed", password="x-unused-9")
    _, token = ApiToken.issue(user=reader, days=1)
    events_port = free_port()
    env = {**child_env(), "ALLOWED_HOSTS": "127.0.0.1", "LEDGER_EVENTS_KEEPALIVE_SECONDS": "600"}
    app = subprocess.Popen(
        unit_command(events_port),
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for_port(events_port, app, "the events server")
        with private_nginx(SNIPPET, CONF, events_port=events_port) as port:
            stream = Stream(port, headers={"Authorization": f"Bearer {token}"}, timeout=10)
            assert stream.status == 200
            stream.next()
            index = services.entry_append(signer=signer, kind="test.sample", payload={}).index
            assert int(stream.next_event()["id"]) == index

            started = time.monotonic()
            app.terminate()
            app.wait(timeout=20)
            assert time.monotonic() - started < 12, "the open stream held the stop"
            with pytest.raises((EOFError, OSError)):
                while True:
                    stream.next()
            stream.close()
    finally:
        stop_process(app)
