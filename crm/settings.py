"""Settings for the sales CRM, read from the environment (django-environ).

Every variable is documented in `.env.example`. `DJANGO_ENV` selects the profile:
- development: SQLite under var/ unless DATABASE_URL is set, DEBUG on, console email.
- test: PostgreSQL (DATABASE_URL, default postgres://root@127.0.0.1:5432/crm) and Redis.
- production: no default for secrets (a missing SECRET_KEY stops start-up), secure cookies, HSTS.
"""

from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DJANGO_ENV = env.str("DJANGO_ENV", default="development")
if DJANGO_ENV not in {"development", "production", "test"}:
    raise ImproperlyConfigured(f"DJANGO_ENV must be development, production or test, not {DJANGO_ENV!r}")
PRODUCTION = DJANGO_ENV == "production"
TESTING = DJANGO_ENV == "test"

if PRODUCTION:
    SECRET_KEY = env.str("SECRET_KEY")  # no default: a missing secret stops start-up
else:
    SECRET_KEY = env.str("SECRET_KEY", default="dev-insecure-secret-key-do-not-use-in-production")

DEBUG = env.bool("DEBUG", default=DJANGO_ENV == "development")
ALLOWED_HOSTS = env.list(
    "ALLOWED_HOSTS", default=[] if PRODUCTION else ["127.0.0.1", "localhost", "testserver", "[::1]"]
)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.contrib.postgres",
    # ours, in the order of the house map (imports point down this list). They come before the
    # third-party apps so that our catalogues win over theirs (django-celery-beat's 'Name' is 任务名).
    "crm",
    "accounts",
    "leads",
    "opportunities",
    "activities",
    "notifications",
    "contracts",
    "aftersales",
    "dashboards",
    "switching",
    # third party
    "axes",
    "crispy_forms",
    "crispy_bootstrap5",
    "django_htmx",
    "django_filters",
    "django_celery_beat",
    "simple_history",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "import_export",
    "csp",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.security_log.RequestContextMiddleware",
    "accounts.middleware.UserLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "crm.urls"
WSGI_APPLICATION = "crm.wsgi.application"
ASGI_APPLICATION = "crm.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.debug",
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "crm.context_processors.navigation",
            ],
        },
    },
]

# --- database ---------------------------------------------------------------------------------
if DJANGO_ENV == "development":
    _default_db = f"sqlite:///{VAR_DIR / 'db.sqlite3'}"
elif TESTING:
    _default_db = "postgres://root@127.0.0.1:5432/crm"
else:
    _default_db = None
DATABASES = {"default": env.db("DATABASE_URL", default=_default_db)}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60 if PRODUCTION else 0)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
IS_POSTGRES = DATABASES["default"]["ENGINE"].endswith(("postgresql", "postgis"))
if IS_POSTGRES:
    # The pages' queries are short, but over millions of rows their estimated cost passes jit_above_cost and
    # PostgreSQL's JIT compiler then spends seconds compiling them (make bench: 2.4 s of a 2.6 s dashboard
    # query). Off for the application's connections.
    _pg_options = DATABASES["default"].setdefault("OPTIONS", {})
    _pg_options["options"] = (_pg_options.get("options", "") + " -c jit=off").strip()

# --- redis, cache, celery ---------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0" if TESTING else "")
# Parallel test processes (pytest-xdist) share one Redis: each gets its own keys and queue.
_TEST_WORKER = env.str("PYTEST_XDIST_WORKER", default="main") if TESTING else ""
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="crm") + (f"-test-{_TEST_WORKER}" if TESTING else ""),
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Without a broker URL and without Redis, Celery uses kombu's filesystem transport under var/
# (the "embedded broker" of `make run`); it needs no server and works with `celery worker -B`.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "filesystem://")
CELERY_BROKER_DIR = VAR_DIR / "celery-broker"
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_DIR / "queue"),
        "data_folder_out": str(CELERY_BROKER_DIR / "queue"),
        "processed_folder": str(CELERY_BROKER_DIR / "processed"),
        "store_processed": False,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=REDIS_URL or None)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="crm") + (
    f"-test-{_TEST_WORKER}" if TESTING else ""
)
CELERY_TIMEZONE = env.str("TIME_ZONE", default="Asia/Shanghai")
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# /healthz/: with HEALTH_REQUIRE_CELERY=True a Celery heartbeat (the crm.ping task, every minute)
# older than HEALTH_CELERY_MAX_AGE seconds, or missing, makes the endpoint answer 503.
HEALTH_REQUIRE_CELERY = env.bool("HEALTH_REQUIRE_CELERY", default=False)
HEALTH_CELERY_MAX_AGE = env.int("HEALTH_CELERY_MAX_AGE", default=300)

# --- auth, accounts ---------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "accounts:login"
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=60 * 60 * 12)
SESSION_EXPIRE_AT_BROWSER_CLOSE = env.bool("SESSION_EXPIRE_AT_BROWSER_CLOSE", default=False)

# django-axes: lock out a username + IP pair after repeated failures, for a finite cool-off.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_LOCKOUT_CALLABLE = "accounts.views.locked_out"
AXES_RESET_ON_SUCCESS = True
# The client address for the lockout and the security log (accounts.security_log.request_client_ip):
# REMOTE_ADDR, or, behind AXES_PROXY_COUNT trusted reverse proxies, the address they forwarded in
# X-Forwarded-For (counted from the right, so a client cannot forge it).
CRM_TRUSTED_PROXY_COUNT = env.int("AXES_PROXY_COUNT", default=0)
AXES_CLIENT_IP_CALLABLE = "accounts.security_log.request_client_ip"
AXES_VERBOSE = False

# --- i18n -------------------------------------------------------------------------------------
LANGUAGE_CODE = env.str("LANGUAGE_CODE", default="zh-hans")
LANGUAGES = [("zh-hans", _("Simplified Chinese")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env.str("TIME_ZONE", default="Asia/Shanghai")
USE_I18N = True
USE_TZ = True

# --- static and media -------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=VAR_DIR / "staticfiles")
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "/media/"
MEDIA_ROOT = env.path("MEDIA_ROOT", default=VAR_DIR / "media")
# Files that only a permission-checking view may serve (contract attachments): outside MEDIA_ROOT.
PRIVATE_MEDIA_ROOT = env.path("PRIVATE_MEDIA_ROOT", default=VAR_DIR / "private")
# Whole-CRM exports (switching): an export's zip can be downloaded for this many hours, then it is deleted.
EXPORT_TTL_HOURS = env.int("EXPORT_TTL_HOURS", default=24)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

if not PRODUCTION:
    Path(STATIC_ROOT).mkdir(parents=True, exist_ok=True)  # whitenoise looks there on start-up
WHITENOISE_USE_FINDERS = not PRODUCTION

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

# --- email ------------------------------------------------------------------------------------
EMAIL_CONFIG = env.email_url(
    "EMAIL_URL", default="consolemail://" if DJANGO_ENV == "development" else "smtp://127.0.0.1:25"
)
globals().update(EMAIL_CONFIG)  # EMAIL_BACKEND, EMAIL_HOST, EMAIL_PORT, ...
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="crm@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)

# --- REST API ---------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: an anonymous request gets 401 with WWW-Authenticate (Session alone gives 403).
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "crm.schema.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "crm.pagination.PageNumberPagination",
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_THROTTLE_CLASSES": ["crm.throttles.PerUserThrottle", "crm.throttles.PerTokenThrottle"],
    "EXCEPTION_HANDLER": "crm.api.exception_handler",
    "PAGE_SIZE": 50,
}
# Requests per user and per API token; "N/second|minute|hour|day".
API_THROTTLE_RATES = {
    "user": env.str("API_THROTTLE_USER", default="2000/hour"),
    "token": env.str("API_THROTTLE_TOKEN", default="1000/hour"),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Sales CRM API",
    "DESCRIPTION": "The same rules as the pages: every write goes through the app's services.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # choice sets that share a field name across apps get explicit, stable component names
    "ENUM_NAME_OVERRIDES": {
        "OpportunitySourceEnum": "opportunities.models.Source",
        "TicketSourceEnum": "aftersales.models.TicketSource",
        "ActivityStatusEnum": "activities.models.ActivityStatus",
        # the moves of the three transition endpoints (each body's `action`)
        "OpportunityMoveEnum": ["advance", "move_back", "win", "lose", "reopen"],
        "ContractMoveEnum": ["submit", "approve", "reject", "activate", "complete", "terminate"],
        "TicketMoveEnum": "aftersales.services.TRANSITIONS",
    },
}

# --- security ---------------------------------------------------------------------------------
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
if PRODUCTION:
    SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=True)
    CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=True)
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
    if env.bool("BEHIND_TLS_PROXY", default=True):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    # The load balancer's health check reaches the app over plain HTTP.
    SECURE_REDIRECT_EXEMPT = [r"^healthz/$"]

# Content-Security-Policy (django-csp): scripts only from our own static files, no inline script, no
# eval, no inline event handler; <style> blocks and foreign style sheets are refused too. Inline
# `style="..."` attributes are allowed (style-src-attr) unless CSP_STRICT_STYLE=True: templates render
# data-driven widths (progress bars, board columns) that way, and an attribute cannot load anything
# because img-src/font-src/connect-src stay 'self'. See README "Security".
_STYLE_ATTR = ["'none'"] if env.bool("CSP_STRICT_STYLE", default=False) else ["'unsafe-inline'"]
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "style-src-elem": ["'self'"],
        "style-src-attr": _STYLE_ATTR,
        "img-src": ["'self'", "data:"],  # Bootstrap draws its icons (select arrow, close) as data: SVG
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],  # with X_FRAME_OPTIONS = "DENY": no framing (clickjacking)
        "report-uri": env.list("CSP_REPORT_URI", default=[]) or None,
    },
}

if TESTING:
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# --- logging ----------------------------------------------------------------------------------
# LOG_FORMAT=json writes one JSON object per line (crm/jsonlog.py) with the structured fields of the
# security log (`crm.security`: who, what, when, IP of every denied access and failed login).
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOG_FORMAT = env.str("LOG_FORMAT", default="json" if PRODUCTION else "plain")
if LOG_FORMAT not in {"json", "plain"}:
    raise ImproperlyConfigured(f"LOG_FORMAT must be json or plain, not {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "crm.jsonlog.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "axes": {"level": "WARNING"},
        "crm.security": {"level": "INFO"},
    },
}

# --- product settings (admin-editable business rules live in the database, not here) -----------
# The team dashboard's figures are cached this long per user, filters, period and language (seconds;
# 0 = computed on every request, the default under test so that a test sees its own writes).
DASHBOARD_CACHE_SECONDS = env.int("DASHBOARD_CACHE_SECONDS", default=0 if TESTING else 300)
CRM_DEMO_PASSWORD = "crm-demo-2026"
