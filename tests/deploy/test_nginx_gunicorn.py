"""The deployment as shipped, run here: gunicorn with deploy/gunicorn.conf.py and nginx
with deploy/nginx/consortium-loopback.conf (the TLS site's locations, on loopback) in
front of it, on the test database. Static files from nginx, the probes, the request id
from nginx to the application's JSON log, no secret in any log, a real download, the
metrics, and the edge's rate limit.

nginx must be installed (apt-get install -y nginx-light) and Redis running (the broker
the readiness check asks); without them these tests fail, saying so."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import redis

from consortium.governance.models import ApiToken
from ledger.services import publish_checkpoint
from tests import personas
from tests.deploy.site import DOWNLOADS, loopback_site
from tests.steps.access import WEIGHTS, authorize
from tests.steps.ledger import ROOT, child_env, wipe_database
from tests.steps.nginx import free_port, readable_dir, wait_for_port

BROKER = "redis://127.0.0.1:6379/13"
SECRETS = {
    "bearer": None,  # the API token, made below
    "cookie": "sessioncookie-Zq8v1XkP0wLr7sTn",
    "password": "hunter2-Pw9Xv3LmQ8rT",
}


def _http(url: str, *, data: bytes | None = None, **headers) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(url, data=data, headers=headers)  # noqa: S310 - local
    try:
        with urllib.request.urlopen(request, timeout=30) as r:  # noqa: S310 - local
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


@contextlib.contextmanager
def gunicorn(env: dict, log: Path):
    """gunicorn -c deploy/gunicorn.conf.py consortium.wsgi with ``env``; yields its port."""
    port = free_port()
    with log.open("w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", "consortium.wsgi"],
            cwd=ROOT,
            env={**env, "GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": "2"},
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            wait_for_port(port, server, f"gunicorn (its log: {log.read_text()[-2000:]})")
            yield port
        finally:
            server.terminate()
            server.wait(timeout=30)


def _json_lines(path: Path) -> list[dict]:
    lines = []
    for text in path.read_text().splitlines():
        with contextlib.suppress(ValueError):
            lines.append(json.loads(text))
    return lines


def _logged(path: Path, wanted, seconds: float = 10) -> list[dict]:
    """The JSON lines of ``path`` that ``wanted`` accepts, once there is one: a server
    writes its line when it finishes a request, which can be just after the client has
    read the last byte."""
    deadline = time.monotonic() + seconds
    while True:
        lines = [line for line in _json_lines(path) if wanted(line)]
        if lines or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


@pytest.fixture(scope="module")
def stack(django_db_setup, django_db_blocker):
    try:
        redis.Redis.from_url(BROKER).ping()
    except redis.ConnectionError as exc:
        pytest.fail(f"needs Redis at {BROKER}: {exc}")
    work = Path(tempfile.mkdtemp(prefix="consortium-stack-"))
    static, tiles = readable_dir("consortium-static-"), readable_dir("consortium-tiles-")
    with django_db_blocker.unblock():
        wipe_database()
        try:
            from django.conf import settings

            media = Path(settings.MEDIA_ROOT)
            lumi = personas.found_lumi()
            checkpoint = personas.publish(lumi, work)
            url = authorize(lumi, checkpoint.digest).json()["files"]["model.safetensors"]
            publish_checkpoint()  # (those asked for after each append are debounced)
            token = ApiToken.issue(user=lumi["people"]["rec_se"], days=1)[1]
            SECRETS["bearer"] = token
            env = {
                **child_env(),
                "DEBUG": "0",
                "ALLOWED_HOSTS": "127.0.0.1,localhost",
                "TRUSTED_PROXY_COUNT": "1",
                "SECURE_SSL_REDIRECT": "0",
                "LOG_FORMAT": "json",
                "STATIC_ROOT": str(static),
                "CELERY_BROKER_URL": BROKER,
            }
            # The contract with deploy/nginx/downloads.conf: the application redirects
            # to its internal location, which serves MEDIA_ROOT's files to nginx.
            location = re.search(r"location\s+(?:\^~\s+)?(/[^\s{]+)", DOWNLOADS.read_text())
            env["DOWNLOADS_ACCEL_REDIRECT"] = location.group(1)
            for path in [media, *media.rglob("*")]:
                path.chmod(0o755 if path.is_dir() else 0o644)
            subprocess.run(
                [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
                cwd=ROOT,
                env=env,
                check=True,
            )
            # A name with a content hash, as ManifestStaticFilesStorage writes them.
            (static / "site.0123456789ab.css").write_text("body { margin: 0 }\n")
            for path in [static, *static.rglob("*")]:
                path.chmod(0o755 if path.is_dir() else 0o644)
            with (
                gunicorn(env, work / "app.log") as app_port,
                loopback_site(app_port, static, tiles, media) as (base, logs),
            ):
                yield {
                    "base": base,
                    "app": f"http://127.0.0.1:{app_port}",
                    "app_log": work / "app.log",
                    "access_log": logs / "consortium.access.log",
                    "env": env,
                    "work": work,
                    "download": url,
                    "token": token,
                }
        finally:
            wipe_database()
            redis.Redis.from_url(BROKER).flushdb()
            for path in (work, static, tiles):
                shutil.rmtree(path, ignore_errors=True)


def test_static_files_come_from_nginx_with_their_cache_headers(stack):
    status, headers, _body = _http(f"{stack['base']}/static/admin/css/base.css")
    assert status == 200 and headers["content-type"] == "text/css"
    assert headers["cache-control"] == "no-cache" and "etag" in headers
    assert headers["x-content-type-options"] == "nosniff"
    status, headers, _ = _http(f"{stack['base']}/static/site.0123456789ab.css")
    assert status == 200
    assert headers["cache-control"] == "public, max-age=31536000, immutable"
    assert _http(f"{stack['base']}/static/absent.css")[0] == 404
    # Served by nginx: the application never saw them.
    assert not [
        line for line in _json_lines(stack["app_log"]) if "static" in str(line.get("route"))
    ]


def test_the_probes_answer_through_nginx_and_are_not_in_its_log(stack):
    status, _, body = _http(f"{stack['base']}/healthz")
    assert status == 200 and json.loads(body) == {"status": "ok"}
    status, headers, body = _http(f"{stack['base']}/readyz")
    ready = json.loads(body)
    assert status == 200, ready
    assert ready["status"] == "ok" and headers["content-type"] == "application/json"
    assert set(ready["checks"]) == {"database", "broker", "storage", "kek", "ledger"}
    assert all(check["ok"] for check in ready["checks"].values())
    assert "redis answers" in ready["checks"]["broker"]["detail"]
    assert "unseals" in ready["checks"]["kek"]["detail"]
    # A probe on the process's address, a host not in ALLOWED_HOSTS, gets its answer too.
    app_port = stack["app"].rsplit(":", 1)[1]
    assert _http(f"{stack['app']}/healthz", Host=f"10.1.2.3:{app_port}")[0] == 200
    logged = stack["access_log"].read_text()
    assert "/healthz" not in logged and "/readyz" not in logged


def test_readyz_names_the_broker_when_it_does_not_answer(stack):
    closed = free_port()  # nothing listens there
    env = {**stack["env"], "CELERY_BROKER_URL": f"redis://127.0.0.1:{closed}/0"}
    with gunicorn(env, stack["work"] / "broken.log") as port:
        status, _, body = _http(f"http://127.0.0.1:{port}/readyz")
    ready = json.loads(body)
    assert status == 503 and ready["status"] == "fail"
    assert ready["checks"]["broker"]["ok"] is False
    assert "does not answer" in ready["checks"]["broker"]["detail"]
    assert all(ready["checks"][name]["ok"] for name in ("database", "storage", "kek", "ledger"))


def test_nginx_request_id_is_answered_and_in_both_logs(stack):
    status, headers, _ = _http(
        f"{stack['base']}/api/v1/ledger/checkpoint",
        Authorization=f"Bearer {stack['token']}",
        **{"X-Request-ID": "chosen-by-the-client-1"},
    )
    assert status == 200
    rid = headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", rid)  # nginx's $request_id, not the client's
    lines = _logged(stack["app_log"], lambda line: line.get("request_id") == rid)
    assert lines and lines[-1]["route"] == "api/v1/ledger/checkpoint"
    assert lines[-1]["status"] == 200 and lines[-1]["method"] == "GET"
    assert {"time", "level", "logger", "message", "duration_ms"} <= set(lines[-1])
    access = _logged(stack["access_log"], lambda line: line["request_id"] == rid)
    assert access and access[0]["uri"] == "/api/v1/ledger/checkpoint" and access[0]["status"] == 200


def test_a_checked_download_is_served_through_nginx(stack):
    url = stack["base"] + stack["download"]
    status, _headers, body = _http(url, Authorization=f"Bearer {stack['token']}")
    assert status == 200 and body == WEIGHTS, (
        status,
        body[:500],
        stack["app_log"].read_text()[-3000:],
    )
    lines = _logged(
        stack["access_log"],
        lambda line: line["uri"] == "/api/v1/downloads/<token>/model.safetensors",
    )
    assert lines and lines[-1]["status"] == 200 and lines[-1]["bytes"] == len(WEIGHTS)
    # The download's token is in no log: nginx writes <token>, and the application logs
    # the URL pattern (gunicorn's access log is off).
    token = stack["download"].split("/")[4]
    assert token not in stack["access_log"].read_text()
    assert token not in stack["app_log"].read_text()
    # With deploy/nginx/downloads.conf (and DOWNLOADS_ACCEL_REDIRECT set for the
    # application), nginx itself sends the bytes the application checked.
    assert lines[-1]["accel_redirect"]
    # Refused without credentials: the application's answer, counted below.
    assert _http(url)[0] in (401, 403)


def test_metrics_are_read_from_an_allowed_address_and_count_what_happened(stack):
    status, headers, body = _http(f"{stack['base']}/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain")
    text = body.decode()

    def value(pattern: str) -> float:
        found = re.search(rf"^{pattern} ([0-9.e+]+)$", text, re.M)
        assert found, pattern
        return float(found.group(1))

    route = re.escape("api/v1/downloads/<str:token>/<path:path>")
    assert (
        value(rf'consortium_http_requests_total\{{method="GET",route="{route}",status="200"\}}')
        >= 1
    )
    assert value("consortium_download_bytes_total") >= len(WEIGHTS)
    assert value(r'consortium_download_refusals_total\{reason_class="holder"\}') >= 1
    assert value("consortium_ledger_tree_size") > 0
    assert value(r'consortium_celery_queue_depth\{queue="celery"\}') >= 0
    assert "consortium_http_request_duration_seconds_bucket" in text
    # From anywhere else: nginx's allow-list (and the application's) refuse.
    status, _, _ = _http(f"{stack['base']}/metrics", **{"X-Forwarded-For": "203.0.113.9"})
    # A client's own X-Forwarded-For changes nothing behind nginx, which appends the address
    # it saw (the one the application reads); straight to gunicorn, that is the claim.
    assert status == 200
    assert _http(f"{stack['app']}/metrics", **{"X-Forwarded-For": "203.0.113.9"})[0] == 403


def test_no_secret_reaches_a_log(stack):
    base = stack["base"]
    _http(f"{base}/api/v1/delegates/self", Authorization=f"Bearer {SECRETS['bearer']}")
    _http(f"{base}/admin/", Cookie=f"sessionid={SECRETS['cookie']}")
    status, headers, page = _http(f"{base}/admin/login/")
    csrf = re.search(r"csrftoken=([A-Za-z0-9]+)", headers["set-cookie"]).group(1)
    form = f"csrfmiddlewaretoken={csrf}&username=rec_se&password={SECRETS['password']}"
    status, _, page = _http(
        f"{base}/admin/login/?next=/admin/&password={SECRETS['password']}",
        data=form.encode(),
        Cookie=f"csrftoken={csrf}",
        **{"Content-Type": "application/x-www-form-urlencoded", "Referer": f"{base}/admin/login/"},
    )
    assert status == 200 and b"errornote" in page  # a wrong password, checked and refused
    assert _logged(stack["access_log"], lambda line: line["method"] == "POST")  # all written
    logs = stack["app_log"].read_text() + stack["access_log"].read_text()
    for name, secret in SECRETS.items():
        assert secret not in logs, name
    assert '"route": "admin/login/"' in logs


def test_the_edge_limits_sign_in_attempts(stack):
    statuses = [_http(f"{stack['base']}/admin/login/")[0] for _ in range(16)]
    assert 429 in statuses and statuses[0] == 200
    assert _http(f"{stack['base']}/healthz")[0] == 200  # other locations are not limited
