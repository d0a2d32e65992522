"""What cannot run here is checked as far as it can be: the TLS site and the compose
site through ``nginx -t`` (certificates made by openssl), the systemd units through
``systemd-analyze verify``, gunicorn's configuration through ``--check-config``, and the
image and compose files read for what they must hold (every file they copy or mount
exists, every setting they give is one the application reads, images pinned, non-root,
health checks)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.deploy.site import test_config
from tests.steps.nginx import free_port, readable_dir

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
UNITS = ["consortium-web.service", "consortium-worker.service", "consortium-beat.service"]


def settings_read() -> set[str]:
    """Every environment variable the settings and gunicorn's configuration read (and
    each envstr one's ``_FILE`` form)."""
    settings = (ROOT / "consortium" / "settings.py").read_text()
    names = set(re.findall(r'env(?:bool|int)\("([A-Z0-9_]+)"', settings))
    strings = set(re.findall(r'envstr\("([A-Z0-9_]+)"', settings))
    names |= strings | {f"{n}_FILE" for n in strings}
    names |= set(re.findall(r'_networks\("([A-Z0-9_]+)"\)', settings))
    names |= set(re.findall(r'os\.environ\.get\("([A-Z0-9_]+)"', settings))
    gunicorn = (DEPLOY / "gunicorn.conf.py").read_text()
    names |= set(re.findall(r'os\.environ(?:\.get\(|\[)"([A-Z0-9_]+)"', gunicorn))
    return names


def test_the_settings_list_is_read_from_the_code():
    names = settings_read()
    assert {"DATABASE_URL", "SECRET_KEY_FILE", "LEDGER_KEK_FILE", "METRICS_TOKEN"} <= names
    assert {"GUNICORN_WORKERS", "PROMETHEUS_MULTIPROC_DIR", "LOG_FORMAT"} <= names


@pytest.fixture(scope="module")
def certificate():
    """A self-signed certificate and key, as the placeholders' paths expect them, where
    an unprivileged nginx can read them."""
    directory = readable_dir("consortium-tls-")
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=ledger.consortium.example",
            "-keyout",
            str(directory / "privkey.pem"),
            "-out",
            str(directory / "fullchain.pem"),
        ],
        check=True,
        capture_output=True,
    )
    for path in directory.iterdir():
        path.chmod(0o644)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def test_the_tls_site_passes_nginx_t(certificate):
    http, https = free_port(), free_port()
    result = test_config(
        "consortium.conf",
        {
            "/etc/ssl/consortium/": f"{certificate}/",
            "listen 80;": f"listen 127.0.0.1:{http};",
            "listen [::]:80;": "",
            "listen 443 ssl http2;": f"listen 127.0.0.1:{https} ssl http2;",
            "listen [::]:443 ssl http2;": "",
            "/var/www/acme": str(certificate),
        },
    )
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr and "[warn]" not in result.stderr


def test_the_tls_site_says_what_a_reviewer_looks_for():
    site = (DEPLOY / "nginx" / "consortium.conf").read_text()
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in site
    assert "return 301 https://$host$request_uri;" in site
    # HSTS is the application's (SECURE_HSTS_SECONDS): never sent twice.
    assert "Strict-Transport-Security" not in "".join(
        p.read_text() for p in (DEPLOY / "nginx").glob("*.conf")
    )
    app = (DEPLOY / "nginx" / "consortium-app.conf").read_text()
    for line in (
        "proxy_set_header X-Request-ID $request_id;",
        "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "proxy_set_header X-Forwarded-Proto $scheme;",
        "include /etc/nginx/snippets/consortium/tiles.conf;",
        "include /etc/nginx/snippets/consortium/downloads.conf;",
        "limit_req zone=consortium_signin",
        "limit_req zone=consortium_tokens",
        "limit_req zone=consortium_api",
    ):
        assert line in app, line


@pytest.mark.parametrize("site", ["consortium-loopback.conf", "compose.conf"])
def test_the_plain_sites_pass_nginx_t(site):
    port = free_port()
    result = test_config(
        site,
        {
            "listen 127.0.0.1:8080;": f"listen 127.0.0.1:{port};",
            "listen 80;": f"listen 127.0.0.1:{port};",
            "server web:8000;": "server 127.0.0.1:8000;",
            "server events:8001;": "server 127.0.0.1:8001;",
        },
    )
    assert result.returncode == 0, result.stderr


def test_gunicorn_accepts_its_configuration():
    env = {**os.environ, "LOG_FORMAT": "json", "GUNICORN_WORKERS": "3"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--check-config",
            "--print-config",
            "-c",
            "deploy/gunicorn.conf.py",
            "consortium.wsgi",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    config = {
        k.strip(): v.strip()
        for k, _, v in (line.partition("=") for line in result.stdout.splitlines())
    }
    assert config["worker_class"] == "gthread" and config["workers"] == "3"
    assert config["preload_app"] == "False" and config["accesslog"] == "None"
    assert "child_exit" in config and config["control_socket_disable"] == "True"


def _units(tmp_path) -> list[Path]:
    """The units with the install's paths pointed at this checkout, so that their
    commands exist for the verifier."""
    env_file = tmp_path / "env"
    env_file.write_text("VAR_DIR=/var/lib/consortium\n")
    written = []
    for name in UNITS:
        text = (DEPLOY / "systemd" / name).read_text()
        text = text.replace("/opt/consortium/.venv/bin/", f"{Path(sys.executable).parent}/")
        text = text.replace("/opt/consortium", str(ROOT)).replace(
            "/etc/consortium/env", str(env_file)
        )
        (tmp_path / name).write_text(text)
        written.append(tmp_path / name)
    return written


def test_systemd_verifies_the_units(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        reason = "systemd-analyze is not installed (apt-get install systemd)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(reason)
        pytest.skip(reason)
    result = subprocess.run(
        [analyze, "verify", "--man=no", *map(str, _units(tmp_path))],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    # An unknown or misspelt key is only a warning to systemd: none is allowed here.
    assert result.stderr.strip() == "", result.stderr


def _unit(name: str) -> dict[str, list[str]]:
    keys: dict[str, list[str]] = {}
    for line in (DEPLOY / "systemd" / name).read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            keys.setdefault(key, []).append(value)
    return keys


@pytest.mark.parametrize("name", UNITS)
def test_each_unit_runs_unprivileged_and_hardened(name):
    unit = _unit(name)
    assert unit["User"] == ["consortium"] and unit["EnvironmentFile"] == ["/etc/consortium/env"]
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "PrivateTmp": "yes",
        "ProtectHome": "yes",
        "CapabilityBoundingSet": "",
        "ReadWritePaths": "/var/lib/consortium",
    }.items():
        assert unit[key] == [value], key
    command = unit["ExecStart"][0]
    expected = {
        "consortium-web.service": "gunicorn -c deploy/gunicorn.conf.py consortium.wsgi",
        "consortium-worker.service": "celery -A consortium worker",
        "consortium-beat.service": "celery -A consortium beat",
    }[name]
    assert expected in command


def _compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def test_the_compose_file_holds_the_whole_stack():
    services = _compose()["services"]
    assert {"postgres", "redis", "minio", "web", "events", "worker", "beat", "nginx"} <= set(
        services
    )
    for name, service in services.items():
        if "build" in service:
            continue  # the application's image, built from this checkout
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository and tag not in ("", "latest") and re.search(r"\d", tag), (name, image)
    for name in ("postgres", "redis", "minio", "web", "events", "worker", "nginx"):
        test = services[name].get("healthcheck", {}).get("test")
        assert test or name == "web", name  # web: the image's HEALTHCHECK
    assert services["web"].get("healthcheck") is None
    assert services["nginx"]["depends_on"]["web"]["condition"] == "service_healthy"
    assert "celery" in services["worker"]["command"] and "beat" in services["beat"]["command"]
    assert "consortium.asgi:application" in services["events"]["command"]


def test_compose_gives_only_settings_the_application_reads():
    compose = _compose()
    read = settings_read()
    apps = [s for s in compose["services"].values() if s["image"].startswith("consortium-ledger")]
    assert len(apps) >= 4
    for service in apps:
        unknown = set(service["environment"]) - read
        assert not unknown, unknown
    # Every secret is a file compose mounts, read by a *_FILE setting.
    secrets = set(compose["secrets"])
    environment = apps[0]["environment"]
    for name, value in environment.items():
        if name.endswith("_FILE") and value.startswith("/run/secrets/"):
            assert value.removeprefix("/run/secrets/") in secrets, name


def test_compose_mounts_and_builds_what_exists():
    compose = _compose()
    for service in compose["services"].values():
        build = service.get("build")
        if build:
            context = (DEPLOY / build["context"]).resolve()
            assert context == ROOT and (context / build["dockerfile"]).is_file()
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), source


def test_the_image_copies_what_exists_and_runs_unprivileged_with_a_health_check():
    lines = [
        line.strip()
        for line in (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert lines[0].startswith("FROM python:3.12") and "-slim" in lines[0]
    copies = [line.split()[1:-1] for line in lines if line.startswith("COPY ")]
    assert copies
    for sources in copies:
        for source in sources:
            assert (ROOT / source).exists(), source
    assert any(line.startswith("RUN pip install") and "-e ." in line for line in lines)
    assert any("collectstatic" in line for line in lines if line.startswith("RUN "))
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    health = next(line for line in lines if line.startswith("HEALTHCHECK "))
    assert "/healthz" in health
    command = next(line for line in lines if line.startswith("CMD "))
    assert "deploy/gunicorn.conf.py" in command and (DEPLOY / "gunicorn.conf.py").is_file()
    environment = " ".join(line for line in lines if line.startswith("ENV "))
    for name in re.findall(r"([A-Z][A-Z0-9_]+)=", environment):
        assert name in settings_read() | {
            "PYTHONDONTWRITEBYTECODE",
            "PYTHONUNBUFFERED",
            "PIP_NO_CACHE_DIR",
            "PIP_DISABLE_PIP_VERSION_CHECK",
        }, name


def test_every_setting_is_in_the_readmes_operator_table():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Operating it") : readme.index("## Commands")]
    listed = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", section))
    missing = {n for n in settings_read() if not n.endswith("_FILE")} - listed
    assert not missing, f"settings missing from the README's Operating it table: {missing}"


def test_the_example_environment_file_sets_only_settings():
    lines = (DEPLOY / "env.example").read_text().splitlines()
    names = {line.split("=", 1)[0] for line in lines if line and not line.startswith("#")}
    assert names and names <= settings_read(), names - settings_read()
