"""Settings, all from the environment, in this one module.

Zero-setup default: DEBUG off, SQLite under ``var/``, tasks run in-process. The
demo (``make demo``) turns DEBUG on, which lets a secret key and a key-encryption
key be generated into ``var/``. Production sets at least SECRET_KEY, DATABASE_URL,
ALLOWED_HOSTS, LEDGER_ORIGIN and LEDGER_KEK (or LEDGER_KEK_FILE).

Past 500 lines and kept whole: one settings module, read top to bottom, is what an
operator checks; a settings tree hides which value wins.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from datetime import timedelta
from pathlib import Path
from urllib.parse import unquote, urlsplit

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("VAR_DIR", BASE_DIR / "var"))


def envstr(name: str, default: str | None = None) -> str | None:
    """The variable ``name``, or the contents of the file named by ``name_FILE``."""
    value = os.environ.get(name)
    path = os.environ.get(f"{name}_FILE")
    if value is not None and path is not None:
        raise ImproperlyConfigured(f"set {name} or {name}_FILE, not both")
    if path is not None:
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE: cannot read {path}: {exc}") from exc
    return value if value is not None else default


def envbool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean (use 1/0, true/false)")


def envint(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        if not value.strip().isascii():
            raise ValueError("ASCII digits only")
        return int(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer") from exc


def _generated_secret(filename: str, make) -> str:
    """A secret kept in ``var/`` for local development, created on first use."""
    path = VAR_DIR / filename
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(make())
    return path.read_text().strip()


DEBUG = envbool("DEBUG", False)

SECRET_KEY = envstr("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is required when DEBUG is off (or run with DEBUG=1 for local use)"
        )
    SECRET_KEY = _generated_secret("secret_key", lambda: secrets.token_urlsafe(50))

ALLOWED_HOSTS = [
    h.strip()
    for h in envstr("ALLOWED_HOSTS", "127.0.0.1,localhost" if DEBUG else "").split(",")
    if h.strip()
]
CSRF_TRUSTED_ORIGINS = [
    o.strip() for o in envstr("CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # The second factor (docs/security.md): TOTP, single-use recovery codes, passkeys.
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "django_otp_webauthn",
    "axes",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "ledger",
    "consortium",
    "contributions",
    "consortium.webhooks",  # partner systems' webhook subscriptions (docs/events.md)
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "consortium.web.middleware.RefuseNulMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The language: the person's choice (the form in the admin's header), else the
    # browser's Accept-Language, else LANGUAGE_CODE.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # request.user.is_verified(): the session passed its second factor.
    "django_otp.middleware.OTPMiddleware",
    "consortium.web.signin.SecondFactorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a lockout raised by its backend into the page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "consortium.urls"
WSGI_APPLICATION = "consortium.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "consortium.context.dashboard",
                "ledger.context.verification_alarm",
                "ledger.context.witness_warning",
                "ledger.context.log_behind",
            ],
        },
    },
]

# --- database ---------------------------------------------------------------------------

DATABASE_URL = envstr("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'consortium.sqlite3'}"
# Persistent connections (docs/scaling.md): a new PostgreSQL connection per request costs
# more than the read it serves. Each is checked before reuse (CONN_HEALTH_CHECKS), so a
# restarted server or pooler costs one retry, never an error. CONN_MAX_AGE=0: a new one
# per request (Django's own default).
CONN_MAX_AGE = envint("CONN_MAX_AGE", 60)
CONN_HEALTH_CHECKS = envbool("CONN_HEALTH_CHECKS", True)
# DATABASE_POOLER=pgbouncer: DATABASE_URL reaches PostgreSQL through PgBouncer in
# transaction mode, where consecutive transactions may run on different server sessions:
# no server-side cursors (a cursor lives beyond its transaction) and no prepared
# statements (one session prepares, another is asked to run it).
DATABASE_POOLER = envstr("DATABASE_POOLER", "") or ""
if DATABASE_POOLER not in ("", "pgbouncer"):
    raise ImproperlyConfigured(
        f"DATABASE_POOLER={DATABASE_POOLER!r}: use pgbouncer, or leave it unset"
    )


def _database(url: str) -> dict:
    db = dj_database_url.parse(
        url, conn_max_age=CONN_MAX_AGE, conn_health_checks=CONN_HEALTH_CHECKS
    )
    if db["ENGINE"] == "django.db.backends.postgresql":
        db.setdefault("OPTIONS", {})
        if DATABASE_POOLER == "pgbouncer":
            db["DISABLE_SERVER_SIDE_CURSORS"] = True
            db["OPTIONS"]["prepare_threshold"] = None
    return db


DATABASES = {"default": _database(DATABASE_URL)}
_db = DATABASES["default"]
if _db["ENGINE"] == "django.db.backends.sqlite3":
    if _db["NAME"] != ":memory:":
        Path(_db["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    _db["OPTIONS"] = {
        # IMMEDIATE takes SQLite's write lock when a transaction begins, which is what
        # serialises ledger appends on this engine (PostgreSQL locks the log-head row).
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;",
    }
    # Tests on SQLite use a file, so that other processes (concurrency tests) see it.
    _db["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
elif _db["ENGINE"] == "django.db.backends.postgresql":
    _db["TEST"] = {"NAME": envstr("TEST_DATABASE_NAME", None)}
# Streaming replicas of the primary, comma-separated URLs: the ledger's read endpoints
# read from them when that is safe (consortium/dbrouter.py, docs/scaling.md). In tests
# each mirrors the primary's test database.
DATABASE_REPLICAS = []
_replica_urls = [u.strip() for u in envstr("DATABASE_REPLICA_URLS", "").split(",") if u.strip()]
for _n, _url in enumerate(_replica_urls, start=1):
    _replica = _database(_url)
    if _replica["ENGINE"] != _db["ENGINE"]:
        raise ImproperlyConfigured("DATABASE_REPLICA_URLS: each replica is of the primary's engine")
    _replica["TEST"] = {"MIRROR": "default"}
    DATABASES[f"replica_{_n}"] = _replica
    DATABASE_REPLICAS.append(f"replica_{_n}")
# Seconds a replica that failed to answer is left alone before it is tried again.
DATABASE_REPLICA_RETRY_SECONDS = envint("DATABASE_REPLICA_RETRY_SECONDS", 30)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Sends queries to a scratch database only while `ledger replay` rebuilds projections.
# Reads of the ledger's read endpoints go to a replica when one is set and it is safe.
DATABASE_ROUTERS = ["ledger.replay.ReplayRouter", "consortium.dbrouter.ReplicaRouter"]

# --- auth, i18n, static -------------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-gb"
# The languages the interface is translated into (locale/<code>/LC_MESSAGES/django.po).
LANGUAGES = [("en-gb", "English"), ("fr", "Français")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
# Dates and numbers for people ("5 Dec 2026, 14:03 UTC", "1,234,567.89"): the formats of
# consortium/formats/ come before Django's for each language. Forms and URLs keep plain
# digits (widgets do not localize unless asked), and the API writes RFC 3339.
FORMAT_MODULE_PATH = ["consortium.formats"]
USE_THOUSAND_SEPARATOR = True

STATIC_URL = "static/"
STATIC_ROOT = Path(envstr("STATIC_ROOT", str(VAR_DIR / "static")))
# Stored files (agreement documents) go through Django's storage API: the local
# filesystem under MEDIA_ROOT unless STORAGES is changed. They are never served as
# static media: each download goes through a view that checks who may read it.
MEDIA_ROOT = Path(envstr("MEDIA_ROOT", str(VAR_DIR / "media")))
# Largest agreement document accepted, in bytes.
AGREEMENT_DOCUMENT_MAX_BYTES = envint("AGREEMENT_DOCUMENT_MAX_BYTES", 20 * 1024 * 1024)
# Set S3_BUCKET to keep stored files in an S3-compatible object store (django-storages)
# instead: S3_ENDPOINT_URL for anything but AWS itself, S3_REGION, S3_PREFIX (a folder in
# the bucket), S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY (else boto3's own lookup:
# environment, instance role), S3_ADDRESSING_STYLE (path or virtual).
S3_BUCKET = envstr("S3_BUCKET", "")
if S3_BUCKET:
    STORAGES = {
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": S3_BUCKET,
                "endpoint_url": envstr("S3_ENDPOINT_URL", "") or None,
                "region_name": envstr("S3_REGION", "") or None,
                "location": envstr("S3_PREFIX", ""),
                "access_key": envstr("S3_ACCESS_KEY_ID", "") or None,
                "secret_key": envstr("S3_SECRET_ACCESS_KEY", "") or None,
                "addressing_style": envstr("S3_ADDRESSING_STYLE", "") or None,
                "default_acl": None,
                "querystring_auth": True,
                "file_overwrite": True,
                # Spool what is opened as a file to disk past 64 MiB, not to memory.
                "max_memory_size": 64 * 1024 * 1024,
            },
        },
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
else:
    STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
# The log's C2SP tlog-tiles, written after each checkpoint (ledger.tile_store) for nginx
# (deploy/nginx/tiles.conf) or a CDN to serve: a directory, TILES_ROOT, or the S3 bucket
# under <S3_PREFIX>/tlog. LEDGER_TILES_WRITE=0 leaves them to the view alone.
TILES_ROOT = Path(envstr("TILES_ROOT", str(VAR_DIR / "tlog")))
if S3_BUCKET:
    STORAGES["tiles"] = {
        "BACKEND": "ledger.tile_storage.TileS3Storage",
        "OPTIONS": {
            **STORAGES["default"]["OPTIONS"],
            "location": "/".join(p for p in (envstr("S3_PREFIX", "").strip("/"), "tlog") if p),
        },
    }
else:
    STORAGES["tiles"] = {
        "BACKEND": "ledger.tile_storage.TileFileStorage",
        "OPTIONS": {"location": TILES_ROOT},
    }
# Download tokens live this many seconds.
DOWNLOAD_TOKEN_SECONDS = envint("DOWNLOAD_TOKEN_SECONDS", 900)
# How a checked download is handed over. By default the app server sends the bytes
# (sendfile for local files, a ranged read streamed from an object store). With
# DOWNLOADS_ACCEL_REDIRECT set to the internal nginx location of deploy/nginx/downloads.conf
# (/_protected/checkpoints/), an X-Accel-Redirect to it + the file's path under the
# checkpoints' storage root (MEDIA_ROOT/checkpoints), for nginx to send, Range included
# (local storage only). DOWNLOAD_ACCEL_REDIRECT, its older spelling, named a location
# for the whole MEDIA_ROOT: it is still read. With DOWNLOAD_PRESIGNED_REDIRECT=1, a 302 to
# a presigned object-store URL that lives DOWNLOAD_PRESIGNED_SECONDS (needs S3_BUCKET, and
# an endpoint members can reach).
DOWNLOADS_ACCEL_REDIRECT = envstr("DOWNLOADS_ACCEL_REDIRECT", "")
if not DOWNLOADS_ACCEL_REDIRECT and envstr("DOWNLOAD_ACCEL_REDIRECT", ""):
    DOWNLOADS_ACCEL_REDIRECT = envstr("DOWNLOAD_ACCEL_REDIRECT").rstrip("/") + "/checkpoints/"
if DOWNLOADS_ACCEL_REDIRECT and not (
    DOWNLOADS_ACCEL_REDIRECT.startswith("/") and DOWNLOADS_ACCEL_REDIRECT.endswith("/")
):
    raise ImproperlyConfigured("DOWNLOADS_ACCEL_REDIRECT is a URL path that starts and ends with /")
DOWNLOAD_PRESIGNED_REDIRECT = envbool("DOWNLOAD_PRESIGNED_REDIRECT", False)
DOWNLOAD_PRESIGNED_SECONDS = envint("DOWNLOAD_PRESIGNED_SECONDS", 60)
if DOWNLOAD_PRESIGNED_REDIRECT and not S3_BUCKET:
    raise ImproperlyConfigured("DOWNLOAD_PRESIGNED_REDIRECT needs S3_BUCKET")
if DOWNLOAD_PRESIGNED_REDIRECT and DOWNLOADS_ACCEL_REDIRECT:
    raise ImproperlyConfigured("choose DOWNLOAD_PRESIGNED_REDIRECT or DOWNLOADS_ACCEL_REDIRECT")
# Largest SLURM accounting export accepted through the API, in bytes (the command reads
# files of any size).
SACCT_IMPORT_MAX_BYTES = envint("SACCT_IMPORT_MAX_BYTES", 512 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = AGREEMENT_DOCUMENT_MAX_BYTES * 4 // 3 + 64 * 1024

# --- signing in (docs/security.md) ---------------------------------------------------------

# Axes first: it refuses a locked-out (user name, address) pair before any password is
# checked, and counts the failures of the backends after it.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "admin:login"
LOGIN_REDIRECT_URL = "/admin/"
# Acts that bind a member need a second factor used within this many seconds.
STEPUP_SECONDS = envint("STEPUP_SECONDS", 300)
# Passkeys are a second factor after the password, never a way in without one.
OTP_WEBAUTHN_ALLOW_PASSWORDLESS_LOGIN = False
OTP_WEBAUTHN_RP_NAME = "Consortium ledger"
# The passkeys' relying party: the host the browser sees (from ALLOWED_HOSTS) unless set.
OTP_WEBAUTHN_RP_ID = envstr("OTP_WEBAUTHN_RP_ID", "") or ""
OTP_WEBAUTHN_RP_ID_CALLABLE = "consortium.web.signin.relying_party_id"
# The origins a passkey ceremony may come from: https:// on each of ALLOWED_HOSTS unless
# set (the demo's http://localhost:8000 too: browsers treat localhost as secure).
OTP_WEBAUTHN_ALLOWED_ORIGINS = [
    o.strip() for o in envstr("OTP_WEBAUTHN_ALLOWED_ORIGINS", "").split(",") if o.strip()
] or [
    # (An address such as 127.0.0.1 cannot be a passkey's relying party, but listing it
    # keeps an address-only configuration valid: django-otp-webauthn refuses to start
    # with no origin at all.)
    *(f"https://{h}" for h in ALLOWED_HOSTS if h[0] not in ".*"),
    *(["http://localhost:8000"] if DEBUG or not ALLOWED_HOSTS else []),
]
OTP_TOTP_ISSUER = "Consortium ledger"
# The admin lists people's devices (to remove a lost one) but never shows an app's secret
# or the recovery codes: a superuser must not be able to pass someone's second factor.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True
# Lockout: this many failed passwords for one user name from one address lock that pair
# out for AXES_COOLOFF_MINUTES; a success resets the count.
AXES_ENABLED = envbool("AXES_ENABLED", True)
AXES_FAILURE_LIMIT = envint("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=envint("AXES_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
AXES_LOCKOUT_CALLABLE = "consortium.web.security_views.lockout"
# The client's address: REMOTE_ADDR, unless TRUSTED_PROXY_COUNT reverse proxies in front
# of the server each append the address they saw to X-Forwarded-For (the client's is
# then that many entries from the end; anything before it is the client's own claim).
TRUSTED_PROXY_COUNT = envint("TRUSTED_PROXY_COUNT", 0)
AXES_CLIENT_IP_CALLABLE = "consortium.web.clientip.client_address"
# Invalid bearer tokens: after this many from one address within the window, that
# address gets 429 (with Retry-After) for every bearer token until the window ends.
API_TOKEN_FAILURE_LIMIT = envint("API_TOKEN_FAILURE_LIMIT", 20)
API_TOKEN_FAILURE_WINDOW = envint("API_TOKEN_FAILURE_WINDOW", 300)
# Seconds a process keeps its decision on a bearer token for reads (GET, HEAD): a token
# revoked, or a seat vacated, by another process reads for at most this long; writes are
# always decided afresh. 0: never kept.
API_TOKEN_CACHE_SECONDS = float(envstr("API_TOKEN_CACHE_SECONDS", "5"))

# --- transport and browser security (docs/security.md) ------------------------------------

SESSION_COOKIE_SECURE = envbool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = envbool("CSRF_COOKIE_SECURE", not DEBUG)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = envint("SESSION_COOKIE_AGE", 8 * 3600)
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# HTTPS only once DEBUG is off: redirect plain HTTP, and tell browsers (HSTS) for a year.
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 0 if DEBUG else 365 * 24 * 3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", False)
# Preloading is the operator's choice (a listed domain is hard to take off browsers'
# lists): without it, `check --deploy` is not to warn about it.
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
# Behind a proxy that ends TLS and sets X-Forwarded-Proto: only when the operator says
# so, since otherwise any client could claim HTTPS with the header.
if envbool("SECURE_PROXY_SSL", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# No inline script or style anywhere: templates link static files, and pass data as
# json_script or data- attributes.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
        "base-uri": [NONE],
        "object-src": [NONE],
    },
}

# --- caches -------------------------------------------------------------------------------

CACHE_URL = envstr("CACHE_URL", "")
if CACHE_URL.startswith(("redis://", "rediss://")):
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- REST API -----------------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "consortium.governance.auth.BearerTokenAuthentication",
        # A session counts only once it passed its second factor.
        "consortium.web.sessionauth.VerifiedSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["consortium.governance.auth.HoldsASeat"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["consortium.web.parsers.StrictJSONParser"],
    # Every list: its FilterSet, and cursor pages in the view's ``ordering``.
    "DEFAULT_FILTER_BACKENDS": ["consortium.web.filters.FilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "consortium.web.pagination.CursorPagination",
    "DEFAULT_METADATA_CLASS": "consortium.web.metadata.Metadata",
    "DEFAULT_SCHEMA_CLASS": "consortium.web.viewsets.ApiSchema",
    "EXCEPTION_HANDLER": "consortium.web.problems.exception_handler",
    "UNAUTHENTICATED_USER": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Consortium ledger API",
    "DESCRIPTION": (
        "The consortium's system of record: a signed, append-only Merkle-tree ledger "
        "with C2SP signed checkpoints and RFC 9162 proofs. Errors are RFC 9457 "
        "problem details (application/problem+json)."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "SECURITY": [{"bearerAuth": []}, {"cookieAuth": []}],
    # Errors as problem+json, strict request bodies, empty filters: see consortium/schema.py.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "consortium.web.schema.problem_details",
    ],
    # Several models have a "kind": name each choice set after its model.
    "ENUM_NAME_OVERRIDES": {
        "MemberKindEnum": "consortium.governance.models.Member.Kind",
        "AgreementKindEnum": "consortium.governance.models.Agreement.Kind",
        "AgreementStateEnum": "consortium.governance.models.Agreement.State",
    },
}

API_TOKEN_DEFAULT_DAYS = envint("API_TOKEN_DEFAULT_DAYS", 90)
API_TOKEN_MAX_DAYS = envint("API_TOKEN_MAX_DAYS", 366)

# --- e-mail notifications -------------------------------------------------------------------
# Members' delegates are told by e-mail when a signature or a vote awaits their member, a
# proposal is decided, a dispute names it or a download is refused (consortium.notifications).
# EMAIL_URL (smtp://user:password@host:587, smtp+tls://..., smtps://..., console://) or
# EMAIL_HOST and friends; without either: the console when DEBUG, SMTP on localhost otherwise.

SITE_URL = (envstr("SITE_URL", "http://127.0.0.1:8000") or "").rstrip("/")
DEFAULT_FROM_EMAIL = envstr("DEFAULT_FROM_EMAIL", "ledger@localhost")
EMAIL_SUBJECT_PREFIX = envstr("EMAIL_SUBJECT_PREFIX", "[Consortium ledger] ")
_EMAIL_BACKENDS = {
    "smtp": "django.core.mail.backends.smtp.EmailBackend",
    "console": "django.core.mail.backends.console.EmailBackend",
    "locmem": "django.core.mail.backends.locmem.EmailBackend",
}
EMAIL_URL = envstr("EMAIL_URL", "")
if EMAIL_URL:
    _mail = urlsplit(EMAIL_URL)
    _scheme = _mail.scheme.lower()
    if _scheme not in {"smtp", "smtp+tls", "smtps", "console", "locmem"}:
        raise ImproperlyConfigured(
            f"EMAIL_URL: unknown scheme {_mail.scheme!r} (smtp, smtp+tls, smtps, console)"
        )
    EMAIL_BACKEND = _EMAIL_BACKENDS["smtp" if _scheme.startswith("smtp") else _scheme]
    EMAIL_HOST = _mail.hostname or "localhost"
    EMAIL_PORT = _mail.port or {"smtps": 465, "smtp+tls": 587}.get(_scheme, 25)
    EMAIL_HOST_USER = unquote(_mail.username or "")
    EMAIL_HOST_PASSWORD = unquote(_mail.password or "")
    EMAIL_USE_TLS = _scheme == "smtp+tls"
    EMAIL_USE_SSL = _scheme == "smtps"
else:
    EMAIL_BACKEND = envstr("EMAIL_BACKEND", _EMAIL_BACKENDS["console" if DEBUG else "smtp"])
    EMAIL_HOST = envstr("EMAIL_HOST", "localhost")
    EMAIL_PORT = envint("EMAIL_PORT", 25)
    EMAIL_HOST_USER = envstr("EMAIL_HOST_USER", "")
    EMAIL_HOST_PASSWORD = envstr("EMAIL_HOST_PASSWORD", "")
    EMAIL_USE_TLS = envbool("EMAIL_USE_TLS", False)
    EMAIL_USE_SSL = envbool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = envint("EMAIL_TIMEOUT", 10)

# --- Celery -------------------------------------------------------------------------------

CELERY_BROKER_URL = envstr("CELERY_BROKER_URL", "")
# Without a broker, tasks run in-process when they are called.
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
if not CELERY_BROKER_URL:
    CELERY_BROKER_URL = "memory://"  # never used: tasks are eager
CELERY_TASK_EAGER_PROPAGATES = True
# Without a broker, long work (audit exports, checkpoint re-verification) runs on a worker
# thread of the web process so that the request returns at once (consortium.web.background);
# off, it runs inside the request that asks for it (the test suite's default).
BACKGROUND_THREADS = envbool("BACKGROUND_THREADS", True)
CELERY_RESULT_BACKEND = envstr("CELERY_RESULT_BACKEND", "") or None
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE = {
    "publish-checkpoint": {
        "task": "ledger.publish_checkpoint",
        "schedule": float(envint("LEDGER_CHECKPOINT_SCHEDULE", 60)),
    },
    "decide-due-proposals": {
        "task": "consortium.decide_due_proposals",
        "schedule": 60.0,
    },
    "advance-agreements": {
        "task": "consortium.advance_agreements",
        "schedule": 60.0,
    },
    "verify-checkpoints": {
        "task": "consortium.verify_checkpoints",
        "schedule": float(envint("CHECKPOINT_VERIFY_SCHEDULE", 24 * 3600)),
    },
    "verify-ledger": {
        "task": "ledger.verify_recent",
        "schedule": float(envint("LEDGER_VERIFY_SCHEDULE", 600)),
    },
    "collect-cosignatures": {
        "task": "ledger.collect_cosignatures",
        "schedule": float(envint("LEDGER_WITNESS_SCHEDULE", 60)),
    },
    "prune-idempotent-responses": {
        "task": "consortium.prune_idempotent_responses",
        "schedule": 3600.0,
    },
}
# How long the answer to a write sent with an Idempotency-Key is kept for its retries.
IDEMPOTENCY_KEEP_DAYS = envint("IDEMPOTENCY_KEEP_DAYS", 7)

# --- the ledger ---------------------------------------------------------------------------

LEDGER_ORIGIN = envstr("LEDGER_ORIGIN", "ledger.consortium.example")
LEDGER_KEK = envstr("LEDGER_KEK")
if not LEDGER_KEK:
    if not DEBUG:
        raise ImproperlyConfigured(
            "LEDGER_KEK or LEDGER_KEK_FILE is required when DEBUG is off: the key-encryption "
            "key that seals hosted private keys (32 random bytes, base64). "
            "Make one with: python -c 'import base64,os; print(base64.b64encode(os.urandom(32)).decode())'"
        )
    LEDGER_KEK = _generated_secret("ledger_kek", lambda: secrets.token_bytes(32).hex())
# Seconds to wait after an append before publishing a checkpoint (with a broker).
LEDGER_CHECKPOINT_DEBOUNCE = envint("LEDGER_CHECKPOINT_DEBOUNCE", 5)
# Ask for a checkpoint after every committed append (debounced); off leaves it to the
# schedule and to `manage.py ledger checkpoint`.
LEDGER_PUBLISH_ON_APPEND = envbool("LEDGER_PUBLISH_ON_APPEND", True)
# The scheduled verification checks at most this many new entries a run (the first run
# on a large log catches up over several).
LEDGER_VERIFY_BATCH = envint("LEDGER_VERIFY_BATCH", 100_000)
# Write the tiles to the "tiles" storage after each checkpoint (task ledger.write_tiles);
# one run at a time, holding a cache lock for at most this many seconds.
LEDGER_TILES_WRITE = envbool("LEDGER_TILES_WRITE", True)
LEDGER_TILES_LOCK_SECONDS = envint("LEDGER_TILES_LOCK_SECONDS", 600)
# The newest checkpoint the log ever published, kept OUTSIDE the database (docs/backups.md):
# a database restored from an old backup is found behind it and the log stays read-only
# until the missing entries are re-ingested. In production, a volume or bucket mount that
# is never restored with the database.
LEDGER_PUBLISHED_PATH = Path(envstr("LEDGER_PUBLISHED_PATH", str(VAR_DIR / "published-checkpoint")))
# Who may read the ledger in the admin besides superusers: any seat holder.
LEDGER_READER_CHECK = "consortium.governance.selectors.holds_a_seat"
# Client-signed entries must carry a time within this many seconds of the server's clock.
LEDGER_SUBMISSION_MAX_SKEW = envint("LEDGER_SUBMISSION_MAX_SKEW", 300)
# Who may submit entries signed by an owner's external keys (POST /api/v1/ledger/entries).
LEDGER_ACTOR_CHECK = "consortium.governance.selectors.may_act_for"
# Witnesses (docs/witnessing.md): seconds per add-checkpoint request, how many times a
# 409 is answered with a new proof, and how often the latest checkpoint is offered
# again to the witnesses that have not cosigned it.
LEDGER_WITNESS_TIMEOUT = float(envstr("LEDGER_WITNESS_TIMEOUT", "3"))
LEDGER_WITNESS_RETRIES = envint("LEDGER_WITNESS_RETRIES", 3)
# With a witness policy adopted and no checkpoint meeting it: serve the latest signed
# checkpoint anyway, saying so in the headers and the admin (True), or answer 503 (False).
LEDGER_WITNESS_FAIL_OPEN = envbool("LEDGER_WITNESS_FAIL_OPEN", False)
# Where the server may send its requests to witnesses (docs/witnessing.md, "Outgoing
# requests"): only global addresses, unless private ones are allowed (on under DEBUG and
# in the tests, where witnesses run on 127.0.0.1) or the address is in one of the
# networks listed (comma-separated CIDRs, for witnesses on a consortium's private network).
LEDGER_WITNESS_ALLOW_PRIVATE = envbool("LEDGER_WITNESS_ALLOW_PRIVATE", DEBUG)


def _networks(name: str) -> tuple:
    networks = []
    for item in (envstr(name) or "").split(","):
        if item.strip():
            try:
                networks.append(ipaddress.ip_network(item.strip(), strict=False))
            except ValueError as exc:
                raise ImproperlyConfigured(
                    f"{name}: {item.strip()!r} is not a network (a CIDR such as 10.1.0.0/16)"
                ) from exc
    return tuple(networks)


LEDGER_WITNESS_ALLOWED_NETWORKS = _networks("LEDGER_WITNESS_ALLOWED_NETWORKS")

# --- events: the SSE stream and the webhooks (docs/events.md) -----------------------------

# The stream wakes on PostgreSQL's NOTIFY when an append commits (the events server must
# then reach PostgreSQL directly: PgBouncer in transaction mode passes no notifications);
# off, or on SQLite, it polls the entries every LEDGER_EVENTS_POLL_SECONDS.
LEDGER_EVENTS_LISTEN = envbool("LEDGER_EVENTS_LISTEN", True)
LEDGER_EVENTS_POLL_SECONDS = float(envstr("LEDGER_EVENTS_POLL_SECONDS", "1"))
# A comment line after this many idle seconds keeps proxies from closing the stream.
LEDGER_EVENTS_KEEPALIVE_SECONDS = float(envstr("LEDGER_EVENTS_KEEPALIVE_SECONDS", "15"))
# The client's reconnection delay (the stream's ``retry:``), and events read at a time
# (all a WSGI server answers at once).
LEDGER_EVENTS_RETRY_MS = envint("LEDGER_EVENTS_RETRY_MS", 3000)
LEDGER_EVENTS_BATCH = envint("LEDGER_EVENTS_BATCH", 100)
# Webhooks: seconds per delivery request; consecutive failed attempts before a
# subscription is marked failing (and paused); the first retry's delay (doubled at each
# attempt, with jitter, at most WEBHOOK_RETRY_MAX_SECONDS); how long a worker's claim on
# a subscription lasts (a worker killed mid-delivery leaves it to another after this);
# how often the sweep looks for deliveries due.
WEBHOOK_TIMEOUT = float(envstr("WEBHOOK_TIMEOUT", "5"))
WEBHOOK_MAX_ATTEMPTS = envint("WEBHOOK_MAX_ATTEMPTS", 30)
WEBHOOK_RETRY_SECONDS = float(envstr("WEBHOOK_RETRY_SECONDS", "10"))
WEBHOOK_RETRY_MAX_SECONDS = float(envstr("WEBHOOK_RETRY_MAX_SECONDS", "3600"))
WEBHOOK_LEASE_SECONDS = envint("WEBHOOK_LEASE_SECONDS", 60)
WEBHOOK_SWEEP_SECONDS = envint("WEBHOOK_SWEEP_SECONDS", 60)
if WEBHOOK_LEASE_SECONDS <= WEBHOOK_TIMEOUT:
    # A claim lapsing during a request would let a second worker deliver out of order.
    raise ImproperlyConfigured("WEBHOOK_LEASE_SECONDS must be longer than WEBHOOK_TIMEOUT")
# The delivery log keeps each attempt this many days (the sweep forgets older ones).
WEBHOOK_DELIVERY_KEEP_DAYS = envint("WEBHOOK_DELIVERY_KEEP_DAYS", 30)
# Webhook URLs are https, unless plain http is allowed (on under DEBUG); their addresses
# obey the witnesses' egress rule (LEDGER_WITNESS_ALLOW_PRIVATE, ..._ALLOWED_NETWORKS).
WEBHOOK_ALLOW_HTTP = envbool("WEBHOOK_ALLOW_HTTP", DEBUG)
CELERY_BEAT_SCHEDULE["webhooks-sweep"] = {
    "task": "webhooks.sweep",
    "schedule": float(WEBHOOK_SWEEP_SECONDS),
}

# --- operations: probes, metrics, logs (docs/deployment.md) -----------------------------------

# First: each request's id and its log line and metrics (consortium.web.logging); then
# /healthz, /readyz and /metrics, answered before the host check and the HTTPS redirect
# (consortium.web.health).
MIDDLEWARE = [
    "consortium.web.logging.RequestIdMiddleware",
    "consortium.web.health.ProbeMiddleware",
    # Proof and download GETs by a bearer token already decided: answered here
    # (consortium.leanreads).
    "consortium.leanreads.LeanReadsMiddleware",
    *MIDDLEWARE,
]
# Seconds each /readyz check may take (they run side by side).
READYZ_TIMEOUT = envint("READYZ_TIMEOUT", 3)
# Who may read /metrics: the client's address (see TRUSTED_PROXY_COUNT) in one of these
# networks, and with METRICS_TOKEN set, that bearer token too.
METRICS_ALLOWED_NETWORKS = _networks("METRICS_ALLOWED_NETWORKS") or tuple(
    ipaddress.ip_network(n) for n in ("127.0.0.0/8", "::1/128")
)
METRICS_TOKEN = envstr("METRICS_TOKEN", "") or ""
# plain (development) or json (one object a line, with the request id); never a secret.
LOG_FORMAT = (envstr("LOG_FORMAT", "plain") or "plain").strip().lower()
if LOG_FORMAT not in {"plain", "json"}:
    raise ImproperlyConfigured(f"LOG_FORMAT={LOG_FORMAT!r}: use plain or json")
# The worker and beat log through LOGGING (so JSON with LOG_FORMAT=json), not Celery's own
# format.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "line": {"()": f"consortium.web.logging.{LOG_FORMAT.capitalize()}Formatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "line"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    # In-process (eager) tasks would otherwise log every run.
    "loggers": {
        "celery": {"level": "WARNING"},
        "kombu": {"level": "ERROR"},
        # PDF rendering logs every font it subsets.
        "fontTools": {"level": "WARNING"},
        "weasyprint": {"level": "WARNING"},
        # Its "Not Found: <path>" says what the request line says, with the path, which
        # can hold a download token; its errors (5xx) stay.
        "django.request": {"level": "ERROR"},
    },
}
