"""Settings read from environment variables and a `.env` file.

Every setting is one typed field; its environment variable is the field name in
upper case (``mongodb_url`` -> ``MONGODB_URL``). Secrets are ``SecretStr`` so they
never show up in ``repr`` or logs.
"""

from __future__ import annotations

import json
import zlib
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from vibetuner.i18n import normalize
from vibetuner.key_strength import MIN_KEY_BITS, key_bits

# Values that look like a key but are copied from examples; refused in production.
PLACEHOLDER_SECRETS = frozenset(
    {"", "change-me", "changeme", "secret", "please-change-me", "replace-me", "dev", "development"}
)


LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")

# "smtp", or an importable "package.module:Class" / "package.module.Class".
BACKEND_PATTERN = r"^(?:[a-z0-9]+|[A-Za-z_][\w.]*[.:][A-Za-z_]\w*)$"
# The Content-Security-Policy of every page unless a route relaxes it. Scripts and styles
# come from this site only; inline ones need the page's nonce, added to script-src and
# style-src for pages that use ``csp_nonce()``.
DEFAULT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


def _locale_code(code: str) -> str:
    """``de-AT`` -> ``de_AT``, when Babel knows the locale; a clear error otherwise."""
    from babel import Locale, UnknownLocaleError

    normalized = normalize(code)
    try:
        Locale.parse(normalized)
    except (UnknownLocaleError, ValueError):
        raise ValueError(
            f"{code!r} is not a known locale (use codes such as en, es, de_AT)"
        ) from None
    return normalized


def _string_list(value: Any) -> Any:
    """A list from a JSON list or from comma-separated text (environment variables)."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


class OIDCProviderSettings(BaseModel):
    """One generic OpenID Connect provider, configured in ``OIDC_PROVIDERS``."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")
    client_id: str
    client_secret: SecretStr
    discovery_url: str
    scopes: str = "openid email profile"
    label: str | None = None


class Settings(BaseSettings):
    """All vibetuner settings. Create one per app; tests pass their own instance."""

    # An empty variable (``MONGODB_URL=``) counts as unset, as in most .env templates.
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        env_ignore_empty=True,
        # The string under each field is its description (the settings reference shows it).
        use_attribute_docstrings=True,
    )

    # --- application -------------------------------------------------------------------
    environment: Literal["development", "test", "production"] = "development"
    """`development`, `test` or `production`. Production refuses to start without a random
    `SESSION_KEY`, a `MONGODB_URL`, the `smtp` email backend (encrypted unless to localhost),
    `TOKEN_ENCRYPTION_KEY` when OAuth is configured and an `https://` `BASE_URL`, and refuses
    security downgrades not named in `ALLOW_INSECURE_PRODUCTION`; it makes the session cookie
    Secure, sends HSTS and serves no API docs (`API_DOCS`).
    """
    app_name: str = "vibetuner"
    """Shown in page titles, emails and the MongoDB app name."""
    base_url: str = "http://127.0.0.1:8000"
    """Public URL of the app, used for links in emails and OAuth callbacks."""
    data_dir: Path = Path("data")
    """Directory for local data (blobs, outbox) when their own settings are unset."""
    log_level: str = "INFO"
    """Level of the root logger in every `vibetuner run` mode (vibetuner's, the app's and uvicorn's
    lines).
    """
    log_format: Literal["auto", "text", "json"] = "auto"
    """`text` (readable, coloured on a terminal), `json` (one object per line: timestamp, level,
    logger, message, request id, user id, route, status, duration) or `auto` (JSON in production).
    """
    log_levels: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    """Levels of single loggers, comma-separated: `vibetuner.jobs=DEBUG,uvicorn.access=WARNING`."""
    shutdown_grace_seconds: int = Field(default=30, ge=0)
    """On SIGTERM, `vibetuner run prod` stops accepting and lets requests in flight finish for this
    long.
    """
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    """Serve Prometheus metrics at `http://METRICS_HOST:METRICS_PORT/metrics`, from every web and
    worker process (a process whose port is taken uses the next free one, up to 63 above).
    Unset, and without `METRICS_TOKEN`: no metrics endpoint. Needs `vibetuner[prometheus]`.
    """
    metrics_host: str = "127.0.0.1"
    """Address of the `METRICS_PORT` endpoint; `0.0.0.0` only on a network that only Prometheus
    reaches.
    """
    metrics_token: SecretStr | None = None
    """Serve Prometheus metrics at `/metrics` on the app's own port too, to requests with
    `Authorization: Bearer <token>` only (at least 32 characters). Needs `vibetuner[prometheus]`.
    """
    sentry_dsn: SecretStr | None = None
    """Send unhandled errors to Sentry (or a compatible tracker) at this DSN, with the request id,
    user id and release; secrets scrubbed. Needs `vibetuner[sentry]`.
    """
    sentry_release: str | None = None
    """The release reported with each error (a version or commit); unset: Sentry's own guess."""
    sentry_traces_sample_rate: float = Field(default=0.0, ge=0, le=1)
    """Share of requests Sentry also traces (0: errors only; tracing is OpenTelemetry's job)."""
    locales: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["en", "es", "de"])
    """Languages offered (comma-separated locale codes); pages and emails are answered in the first
    one that matches the user.
    """
    default_locale: str = "en"
    """The language when nothing else decides (added to `LOCALES` if missing)."""

    # --- MongoDB ---------------------------------------------------------------------
    mongodb_url: SecretStr | None = None
    """MongoDB connection URL. Unset: the in-memory development database, saved to
    `DATA_DIR/devdb.bson` in development (kept across restarts), not saved in tests.
    """
    mongodb_db: str | None = None
    """Database name; unset: the one in the path of `MONGODB_URL`, else `vibetuner`."""
    mongodb_timeout_ms: int = Field(default=3000, ge=100, le=60000)
    """Server selection and connect timeout; startup fails after it."""

    # --- sessions --------------------------------------------------------------------
    session_key: SecretStr | None = None
    """Key that signs session cookies; in production a random value of at least 32 characters
    (`python -c 'import secrets; print(secrets.token_urlsafe(48))'`). Unset in development: one
    is made once and kept in `DATA_DIR/session_key`; in tests: a random one per process.
    """
    session_cookie: str = "vibetuner_session"
    """Name of the session cookie (in production it gets the `__Host-` prefix: Secure, path `/`, no
    Domain).
    """
    session_max_age: int = Field(default=14 * 24 * 3600, ge=60)
    """Absolute lifetime of a sign-in, in seconds, counted from the sign-in; activity never extends
    it.
    """
    session_idle_timeout: int = Field(default=3 * 24 * 3600, ge=0)
    """A session unused this many seconds ends; `0` turns the idle limit off."""

    # --- request security (CSRF, headers, proxies) ------------------------------------
    csrf_trusted_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Other origins allowed to send unsafe requests (comma-separated or a JSON list of
    `https://host[:port]`), such as a separate front end; this site itself (`BASE_URL` and the
    `Host` header) always is.
    """
    security_headers: bool = True
    """Add the security headers (CSP, `X-Frame-Options`, `nosniff`, `Referrer-Policy`, `no-store`
    for signed-in users, HSTS in production).
    """
    content_security_policy: str = DEFAULT_CSP
    """The policy of every response; pages that use `csp_nonce()` get their nonce added to
    `script-src` and `style-src`. Empty: no CSP header.
    """
    csp_report_only: bool = False
    """Send the policy as `Content-Security-Policy-Report-Only` (browsers report, do not block)."""
    hsts_max_age: int = Field(default=2 * 365 * 24 * 3600, ge=0)
    """`Strict-Transport-Security` max-age in production; `0` sends none."""
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Reverse proxies whose `X-Forwarded-For`/`-Proto` are believed (addresses or networks,
    comma-separated, `*` for any peer); used by `vibetuner run dev` and `run prod` alike, and the
    rate limits.
    """
    request_body_timeout: float = Field(default=15.0, ge=0)
    """Seconds to wait for the next piece of a request body; past that the client gets 408 and the
    connection is closed. `0`: wait forever.
    """
    allow_insecure_production: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Security downgrades production accepts (comma-separated): `trusted_proxies`,
    `security_headers`, `csp`, `csp_report_only`, `csrf_http_origins`, `session_max_age` (over 30
    days), `hsts`, `rate_limits` (`RATE_LIMIT_ENABLED=false`), `realtime_session_check` (over 300
    seconds); each is otherwise refused, and logged as a warning when accepted.
    """
    api_docs: bool | None = None
    """Serve `/docs`, `/redoc` and `/openapi.json`; unset: served except in production."""

    # --- background jobs ---------------------------------------------------------------
    redis_url: SecretStr | None = None
    """Redis for jobs and realtime events (`redis://...`); unset: both stay in the web process."""
    jobs_queue: str = Field(default="default", pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    """Name of the Redis job queue (apps sharing a Redis use different names)."""
    jobs_concurrency: int = Field(default=16, ge=1, le=1000)
    """Jobs one worker runs at once (`run worker --concurrency` overrides it)."""
    jobs_idle_timeout: float = Field(default=60, gt=0)
    """Seconds before a job whose worker went silent is run by another worker."""
    jobs_shutdown_grace: float = Field(default=10, ge=0)
    """Seconds a stopping process waits for running jobs."""
    jobs_health_depth: bool = False
    """`/health` also reports how many jobs wait."""
    jobs_heartbeat_timeout: float = Field(default=60, ge=1)
    """Seconds after which a worker that has not beaten counts as dead (`vibetuner jobs health`)."""

    # --- rate limits -----------------------------------------------------------------
    rate_limit_enabled: bool = True
    """Check the limits of routes (`@rate_limit`) and the defaults below; `false` turns both off
    (the sign-in limits stay).
    """
    rate_limit_backend: Literal["auto", "mongodb", "redis", "memory"] = "auto"
    """Where the counters live: `mongodb` (the app's database, shared by every worker, also the
    in-memory one), `redis` (`REDIS_URL`, shared), `memory` (this process only, for tests), or
    `auto`: Redis when `REDIS_URL` is set, else MongoDB.
    """
    rate_limit_unsafe: str = "10/second;120/minute"
    """Default limit of unsafe requests (every method but GET, HEAD and OPTIONS) per signed-in
    session, else per client address, over the whole app; rates like `5/second;100/minute`,
    empty: none.
    """
    rate_limit_pages: str = ""
    """Default limit of GET, HEAD and OPTIONS requests that ask for HTML (pages, htmx), per
    signed-in session, else per client address, such as `20/second;600/minute`; empty (the
    default): none, as a burst rate under 32 a window (`20/second`) costs a database or Redis
    command on every page (larger quotas are counted in blocks, see Rate limits).
    """
    rate_limit_api: str = ""
    """Default limit of GET, HEAD and OPTIONS requests that do not ask for HTML (API clients), per
    signed-in session, else per client address, such as `20/second;600/minute`; empty (the
    default): none.
    """
    rate_limit_exempt_paths: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["/health", "/admin", "/static"]
    )
    """Paths that the defaults leave alone, with everything below them (comma-separated): the
    health probes, the admin, static files.
    """

    # --- caching (CacheFeature) -----------------------------------------------------------
    cache_backend: Literal["memory", "redis", "mongodb"] = "memory"
    """Where `CacheFeature` keeps cached values and pages: `memory` (each process its own, an LRU
    bounded by `CACHE_MEMORY_MAX_BYTES`), `redis` (shared by every process on `REDIS_URL`; needs
    `pip install "vibetuner[redis]"`) or `mongodb` (shared, in a TTL collection of the app's
    database; works on the development database too).
    """
    cache_memory_max_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    """Largest size, in bytes, of the in-process cache, and of each process's template fragments;
    the least recently used entries go first.
    """
    cache_default_ttl: float = Field(default=300, gt=0)
    """Lifetime in seconds of cached values, fragments and pages stored without one."""
    cache_prefix: str = Field(default="", pattern=r"^[A-Za-z0-9_.:-]{0,64}$")
    """Prepended to every cache key, so apps sharing a Redis or database keep apart; empty:
    `APP_NAME`.
    """
    cache_lock_seconds: float = Field(default=10, gt=0)
    """With a shared backend, how long other processes wait for the one computing a cold key
    before computing it themselves.
    """
    cache_fragment_sync_seconds: float = Field(default=1.0, gt=0)
    """With a shared backend, how often each process reads the tags invalidated by others (its
    template fragments are kept in its own memory).
    """

    # --- realtime (server-sent events) ------------------------------------------------
    realtime_history: int = Field(default=1000, ge=1, le=1_000_000)
    """Events kept for browsers that reconnect (`Last-Event-ID`), all channels together."""
    realtime_buffer: int = Field(default=100, ge=1, le=100_000)
    """Events waiting for one browser; a browser that falls this far behind is dropped."""
    realtime_heartbeat: float = Field(default=15, gt=0, le=300)
    """Seconds between keep-alive comments on an idle event stream."""
    realtime_send_timeout: float = Field(default=10, gt=0)
    """Seconds one write to a browser may take before the browser is dropped (stopped reading)."""
    realtime_session_check: float = Field(default=30, gt=0)
    """Seconds between checks that each open stream's session is still live: how long a stream may
    outlive a session that ended without a signal (production refuses over 300).
    """
    realtime_max_channels: int = Field(default=16, ge=1, le=1000)
    """Channels one event stream may subscribe to."""
    realtime_max_streams_per_session: int = Field(default=32, ge=1)
    """Event streams one signed-in browser may hold open at once (its tabs); more get 429."""
    realtime_max_event_bytes: int = Field(default=64 * 1024, ge=256, le=16 * 1024 * 1024)
    """Largest event data `publish` accepts, in bytes."""
    realtime_redis_prefix: str = Field(
        default="vibetuner:realtime", pattern=r"^[A-Za-z0-9_.:-]{1,64}$"
    )
    """Prefix of realtime's Redis keys and channel (apps sharing a Redis use different ones)."""

    # --- sign-in ---------------------------------------------------------------------
    magic_link_ttl_seconds: int = Field(default=15 * 60, ge=60, le=7 * 24 * 3600)
    """Lifetime of an emailed sign-in link."""
    magic_link_rate_per_email: int = Field(default=5, ge=1)
    """Links one email address may request per window."""
    magic_link_rate_per_ip: int = Field(default=30, ge=1)
    """Links one client address may request per window (behind `TRUSTED_PROXIES`; IPv6 per /64)."""
    magic_link_rate_window_seconds: int = Field(default=15 * 60, ge=1)
    """Length of the rate-limit window."""
    login_redirect: str = "/"
    """Where to go after sign-in when no safe `next` was given."""
    token_encryption_key: SecretStr | None = None
    """Fernet key; when set, stored OAuth tokens are encrypted at rest, and so are two-factor
    secrets (which without it are encrypted with a key derived from `SESSION_KEY`).
    """
    passkeys: bool = True
    """Offer passkeys (WebAuthn): adding them on the account page and signing in with them. The
    relying party is the host of `BASE_URL` and only its origin is accepted, so passkeys work on a
    domain name (`localhost` included), never on an IP address such as `127.0.0.1`.
    """
    passkey_challenge_ttl_seconds: int = Field(default=300, ge=30, le=3600)
    """How long a passkey ceremony (adding one, or signing in) may take before its challenge
    expires.
    """
    passkey_rate_per_ip: int = Field(default=100, ge=1)
    """Passkey ceremonies one client address may start per `MAGIC_LINK_RATE_WINDOW_SECONDS` (the
    sign-in page starts one on every visit, for the browser's autofill).
    """
    recent_sign_in_seconds: int = Field(default=15 * 60, ge=60)
    """Removing a passkey needs a sign-in at most this old; an older session is asked to sign in
    again first.
    """

    # --- personal API tokens ------------------------------------------------------------
    api_token_scopes: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["read", "write"]
    )
    """Scopes users may give their API tokens (comma-separated): `read` and `write` cover every
    `<thing>:read` and `<thing>:write`; an app adds its own, such as `notes:read,notes:write`.
    """
    api_token_max_days: int = Field(default=365, ge=1, le=3650)
    """The longest lifetime a user may give an API token, in days."""
    api_token_rate_per_minute: int = Field(default=120, ge=1)
    """Requests one API token may make per minute."""

    # --- two-factor codes (TOTP) --------------------------------------------------------
    two_factor_rate_per_user: int = Field(default=5, ge=1)
    """Two-factor codes one user may try per window (sign-in, confirming, turning it off)."""
    two_factor_rate_per_ip: int = Field(default=30, ge=1)
    """Two-factor codes one client address may try per window (behind `TRUSTED_PROXIES`)."""
    two_factor_rate_window_seconds: int = Field(default=5 * 60, ge=1)
    """Length of the two-factor rate-limit window."""
    two_factor_step_seconds: int = Field(default=5 * 60, ge=30, le=3600)
    """How long a sign-in waits for its two-factor code; after that the first step starts again."""
    two_factor_fresh_seconds: int = Field(default=15 * 60, ge=60, le=24 * 3600)
    """Sensitive actions (deleting the account, viewing as a user, changing sign-in methods) need a
    second factor given within this many seconds, from users who have two-factor codes on.
    """
    two_factor_required_roles: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Roles (comma-separated) that work only in a session that gave a second factor, such as
    `admin`; their holders are asked to turn two-factor on.
    """

    google_client_id: str | None = None
    """Client id of a Google OAuth client; with the secret, enables "Sign in with Google"."""
    google_client_secret: SecretStr | None = None
    """Client secret of the Google OAuth client named in `GOOGLE_CLIENT_ID`."""
    github_client_id: str | None = None
    """Client id of a GitHub OAuth app; with the secret, enables "Sign in with GitHub"."""
    github_client_secret: SecretStr | None = None
    """Client secret of the GitHub OAuth app named in `GITHUB_CLIENT_ID`."""
    oidc_providers: list[OIDCProviderSettings] = Field(default_factory=list)
    """JSON list of generic OpenID Connect providers: `[{"name": "acme", "client_id": "...",
    "client_secret": "...", "discovery_url": "https://.../.well-known/openid-configuration",
    "scopes": "openid email profile", "label": "Acme"}]`.
    """

    # --- email -----------------------------------------------------------------------
    email_backend: str = Field(default="console", pattern=BACKEND_PATTERN)
    """`console` (print), `file` (one `.eml` per message in `EMAIL_FILE_DIR`), `smtp`, or a dotted
    path to your own backend class.
    """
    email_from: str = "vibetuner <no-reply@localhost>"
    """Sender address."""
    email_file_dir: Path = Path("data/outbox")
    """Directory of the `file` backend."""
    smtp_host: str = "localhost"
    """Host name of the SMTP server."""
    smtp_port: int = 587
    """Port of the SMTP server."""
    smtp_username: str | None = None
    """SMTP user name, when the server needs a login."""
    smtp_password: SecretStr | None = None
    """SMTP password, when the server needs a login."""
    smtp_security: Literal["none", "starttls", "tls"] = "starttls"
    """`starttls`, `tls` (implicit TLS, usually port 465) or `none`."""
    smtp_timeout: float = Field(default=10.0, gt=0)
    """SMTP timeout in seconds."""

    # --- blob storage ----------------------------------------------------------------
    blob_backend: str = Field(default="local", pattern=BACKEND_PATTERN)
    """`local` (files on disk), `s3` (needs `pip install "vibetuner[s3]"`), or a dotted path to your
    own backend class.
    """
    blob_dir: Path | None = None
    """Directory of the local backend; unset: `DATA_DIR/blobs`."""
    blob_max_size: int = Field(default=50 * 1024 * 1024, ge=1)
    """Largest accepted upload, in bytes."""
    blob_url_ttl_seconds: int = Field(default=3600, ge=1)
    """Lifetime of signed/presigned download URLs."""
    blob_redirect_to_presigned: bool = False
    """On S3, answer content downloads with a redirect to a presigned URL."""
    blob_chunk_size: int = Field(default=1024 * 1024, ge=4096)
    """Chunk size for streaming reads and writes."""
    image_max_pixels: int = Field(default=50_000_000, ge=1)
    """Largest PNG, JPEG, GIF or WebP accepted in any upload (width x height, read from the header
    before anything decodes it; over it: 422). 50 MP holds a 50 MP camera's photo (8160 x 6120);
    decoding one takes up to 200 MB (4 bytes a pixel).
    """
    s3_bucket: str | None = None
    """Bucket name (required with `BLOB_BACKEND=s3`)."""
    s3_endpoint_url: str | None = None
    """Endpoint of an S3-compatible store (MinIO, R2); unset for AWS."""
    s3_region: str = "us-east-1"
    """Region of the bucket."""
    s3_access_key_id: str | None = None
    """Access key id; unset (with the secret) uses the AWS default credential chain."""
    s3_secret_access_key: SecretStr | None = None
    """Secret access key of `S3_ACCESS_KEY_ID`; unset uses the AWS default credential chain."""
    s3_create_bucket: bool = False
    """Create the bucket at startup if missing (development)."""
    s3_part_size: int = Field(default=8 * 1024 * 1024, ge=5 * 1024 * 1024)
    """Multipart upload part size (at least 5 MiB)."""
    s3_max_concurrency: int = Field(default=2, ge=1)
    """Parts uploaded at once."""
    s3_max_io_queue: int = Field(default=2, ge=1)
    """Parts buffered in memory at once; memory is about part size times this."""

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"must be the site's address with scheme and host, like "
                f"https://app.example.com (got {value!r})"
            )
        return value.rstrip("/")

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)} (got {value!r})")
        return level

    @field_validator("log_levels", mode="before")
    @classmethod
    def _parse_log_levels(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("{"):
                value = json.loads(text)
            else:
                value = {}
                for part in (p.strip() for p in text.split(",")):
                    if not part:
                        continue
                    name, sep, level = part.partition("=")
                    if not sep or not name.strip():
                        raise ValueError(
                            f"{part!r} is not logger=LEVEL (like vibetuner.jobs=DEBUG)"
                        )
                    value[name.strip()] = level
        if not isinstance(value, dict):
            return value
        levels = {}
        for name, level in value.items():
            upper = str(level).strip().upper()
            if upper not in LOG_LEVELS:
                raise ValueError(
                    f"{name}: level must be one of {', '.join(LOG_LEVELS)} (got {level!r})"
                )
            levels[str(name)] = upper
        return levels

    @field_validator("mongodb_url")
    @classmethod
    def _check_mongodb_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(
            ("mongodb://", "mongodb+srv://")
        ):
            # The value may hold a password: it is not repeated here.
            raise ValueError("must start with mongodb:// or mongodb+srv://")
        return value

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(
            ("redis://", "rediss://", "unix://")
        ):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("oidc_providers", mode="before")
    @classmethod
    def _parse_oidc_providers(cls, value: Any) -> Any:
        # Accept a JSON string from the environment as well as a list.
        if isinstance(value, str):
            return json.loads(value) if value.strip() else []
        return value

    @field_validator("locales", mode="before")
    @classmethod
    def _parse_locales(cls, value: Any) -> Any:
        codes = _string_list(value)
        if not isinstance(codes, list):
            return codes
        checked = [_locale_code(str(code)) for code in codes if str(code).strip()]
        if not checked:
            raise ValueError("name at least one locale, such as en")
        return checked

    @field_validator("default_locale")
    @classmethod
    def _check_default_locale(cls, value: str) -> str:
        return _locale_code(value)

    @field_validator("csrf_trusted_origins", mode="before")
    @classmethod
    def _parse_origins(cls, value: Any) -> Any:
        origins = _string_list(value)
        if not isinstance(origins, list):
            return origins
        cleaned = []
        for origin in origins:
            text = str(origin).strip().rstrip("/").lower()
            scheme, _, host = text.partition("://")
            if scheme not in ("http", "https") or not host or "/" in host:
                raise ValueError(f"{origin!r} is not an origin like https://app.example.com")
            cleaned.append(text)
        return cleaned

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _parse_proxies(cls, value: Any) -> Any:
        import ipaddress

        proxies = _string_list(value)
        if not isinstance(proxies, list):
            return proxies
        for proxy in proxies:
            if proxy == "*":
                continue
            try:
                ipaddress.ip_network(str(proxy), strict=False)
            except ValueError:
                raise ValueError(
                    f"{proxy!r} is not an IP address or network (like 10.0.0.0/8)"
                ) from None
        return [str(proxy) for proxy in proxies]

    @field_validator("rate_limit_unsafe", "rate_limit_pages", "rate_limit_api")
    @classmethod
    def _check_rates(cls, value: str) -> str:
        from vibetuner.rates import parse_rates

        parse_rates(value)  # a ValueError names the text
        return value.strip()

    @field_validator("rate_limit_exempt_paths", mode="before")
    @classmethod
    def _parse_exempt_paths(cls, value: Any) -> Any:
        paths = _string_list(value)
        if not isinstance(paths, list):
            return paths
        for path in paths:
            if not str(path).startswith("/"):
                raise ValueError(f"{path!r} is not a path such as /health")
        return [str(path) for path in paths]

    @field_validator("allow_insecure_production", mode="before")
    @classmethod
    def _parse_opt_outs(cls, value: Any) -> Any:
        names = _string_list(value)
        if not isinstance(names, list):
            return names
        cleaned = [str(name).strip().lower() for name in names]
        for name in cleaned:
            if name not in INSECURE_OPT_OUTS:
                raise ValueError(f"{name!r} is not one of {', '.join(INSECURE_OPT_OUTS)}")
        return cleaned

    @field_validator("api_token_scopes", mode="before")
    @classmethod
    def _parse_scopes(cls, value: Any) -> Any:
        import re

        scopes = _string_list(value)
        if not isinstance(scopes, list):
            return scopes
        cleaned = [str(scope).strip() for scope in scopes if str(scope).strip()]
        for scope in cleaned:
            if not re.fullmatch(r"[a-z][a-z0-9_.-]{0,39}(:[a-z][a-z0-9_.-]{0,39})?", scope):
                raise ValueError(f"{scope!r} is not a scope name (like read, or notes:write)")
        if not cleaned:
            raise ValueError("name at least one scope, such as read")
        return cleaned

    @field_validator("two_factor_required_roles", mode="before")
    @classmethod
    def _parse_required_roles(cls, value: Any) -> Any:
        import re

        roles = _string_list(value)
        if not isinstance(roles, list):
            return roles
        cleaned = [str(role).strip() for role in roles if str(role).strip()]
        for role in cleaned:
            # The pattern of vibetuner.models.user.ROLE_PATTERN (not imported: Beanie is heavy).
            if not re.fullmatch(r"[a-z][a-z0-9_-]{0,31}", role):
                raise ValueError(f"{role!r} is not a role name (a-z, 0-9, '_' and '-')")
        return cleaned

    @model_validator(mode="after")
    def _check_production(self) -> Settings:
        if self.environment == "production":
            problems = production_problems(self)
            if problems:
                raise ValueError(
                    "ENVIRONMENT=production refuses unsafe settings: " + "; ".join(problems)
                )
        return self

    @property
    def session_cookie_name(self) -> str:
        """The cookie's name: with the ``__Host-`` prefix in production.

        Browsers accept a ``__Host-`` cookie only when it is Secure, for path ``/`` and
        without a Domain, so a sibling subdomain cannot plant or override it.
        """
        if self.is_production and not self.session_cookie.startswith("__Host-"):
            return f"__Host-{self.session_cookie}"
        return self.session_cookie

    @property
    def api_docs_enabled(self) -> bool:
        """Whether ``/docs``, ``/redoc`` and ``/openapi.json`` are served (``API_DOCS``;
        unset: everywhere but in production, where they would map the API for anyone)."""
        return self.api_docs if self.api_docs is not None else not self.is_production

    @property
    def is_production(self) -> bool:
        """True when running with ``ENVIRONMENT=production``."""
        return self.environment == "production"

    @property
    def blob_directory(self) -> Path:
        """Directory of the local blob backend (``BLOB_DIR``, else ``DATA_DIR/blobs``)."""
        return self.blob_dir if self.blob_dir is not None else self.data_dir / "blobs"


KEY_COMMAND = "python -c 'import secrets; print(secrets.token_urlsafe(48))'"
METRICS_TOKEN_COMMAND = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
FERNET_COMMAND = (
    "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
)
# The downgrades production refuses unless ALLOW_INSECURE_PRODUCTION names them.
# (What each stands for is in ``downgrades``.)
INSECURE_OPT_OUTS = (
    "trusted_proxies",
    "security_headers",
    "csp",
    "csp_report_only",
    "csrf_http_origins",
    "session_max_age",
    "hsts",
    "rate_limits",
    "realtime_session_check",
)
# Longest sign-in production accepts without the opt-out: a stolen cookie lasts this long.
PRODUCTION_MAX_SESSION_AGE = 30 * 24 * 3600
# Longest an event stream may outlive its session (expired, or ended with no signal).
PRODUCTION_MAX_REALTIME_SESSION_CHECK = 300
# Hosts that SMTP_SECURITY=none may talk to: the mail never leaves the machine.
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


def production_problems(settings: Settings) -> list[str]:
    """What makes ``settings`` unsafe for production, one readable sentence each."""
    problems = []
    key = settings.session_key.get_secret_value() if settings.session_key else ""
    if key.strip().lower() in PLACEHOLDER_SECRETS or len(key) < 32:
        problems.append(
            "SESSION_KEY must be a random value of at least 32 characters (generate one with: "
            f"{KEY_COMMAND})"
        )
    elif is_guessable(key):
        problems.append(
            f"SESSION_KEY is guessable ({guessable_because(key)}); use a random value "
            f"(generate one with: {KEY_COMMAND})"
        )
    if settings.mongodb_url is None:
        problems.append("MONGODB_URL must be set (the in-memory database keeps nothing)")
    if settings.email_backend == "console":
        problems.append("EMAIL_BACKEND=console would print sign-in links to the logs; use smtp")
    if settings.email_backend == "file":
        problems.append("EMAIL_BACKEND=file would write sign-in links to disk; use smtp")
    if (
        settings.email_backend == "smtp"
        and settings.smtp_security == "none"
        and settings.smtp_host.strip().lower() not in LOOPBACK_HOSTS
    ):
        problems.append(
            f"SMTP_SECURITY=none would send sign-in links unencrypted to {settings.smtp_host}; "
            "use starttls or tls (none is only for a mail relay on localhost)"
        )
    if oauth_configured(settings) and not (
        settings.token_encryption_key and settings.token_encryption_key.get_secret_value().strip()
    ):
        problems.append(
            "TOKEN_ENCRYPTION_KEY must be set when OAuth providers are configured (provider "
            f"tokens are stored encrypted; generate one with: {FERNET_COMMAND})"
        )
    weak_fernet = guessable_fernet_key(settings.token_encryption_key)
    if weak_fernet:
        problems.append(
            f"TOKEN_ENCRYPTION_KEY is guessable ({weak_fernet}); use a generated key "
            f"(generate one with: {FERNET_COMMAND})"
        )
    metrics = settings.metrics_token.get_secret_value().strip() if settings.metrics_token else ""
    if metrics and is_guessable(metrics):
        # /metrics on the app's own port answers whoever knows it.
        problems.append(
            f"METRICS_TOKEN is guessable ({guessable_because(metrics)}); use a random value "
            f"(generate one with: {METRICS_TOKEN_COMMAND})"
        )
    if not settings.base_url.startswith("https://"):
        problems.append("BASE_URL must be the public https:// address (session cookies are Secure)")
    for name, sentence in downgrades(settings).items():
        if name not in settings.allow_insecure_production:
            problems.append(f"{sentence} (to accept it, set ALLOW_INSECURE_PRODUCTION={name})")
    return problems


def downgrades(settings: Settings) -> dict[str, str]:
    """The security downgrades ``settings`` make, by their ``ALLOW_INSECURE_PRODUCTION``
    name, each with one sentence saying what it costs."""
    found = {}
    if "*" in settings.trusted_proxies:
        found["trusted_proxies"] = (
            "TRUSTED_PROXIES=* lets any client choose the address the rate limits count "
            "by sending X-Forwarded-For: name the proxies' addresses"
        )
    if not settings.security_headers:
        found["security_headers"] = (
            "SECURITY_HEADERS=false sends no Content-Security-Policy, X-Frame-Options, "
            "nosniff or HSTS header"
        )
    if not settings.content_security_policy.strip():
        found["csp"] = "an empty CONTENT_SECURITY_POLICY lets injected scripts run"
    if settings.csp_report_only:
        found["csp_report_only"] = (
            "CSP_REPORT_ONLY=true only reports what the Content-Security-Policy would block"
        )
    plain = [origin for origin in settings.csrf_trusted_origins if origin.startswith("http://")]
    if plain:
        found["csrf_http_origins"] = (
            f"CSRF_TRUSTED_ORIGINS trusts {', '.join(plain)}, which anyone on the network "
            "can impersonate: use https://"
        )
    if settings.session_max_age > PRODUCTION_MAX_SESSION_AGE:
        found["session_max_age"] = (
            f"SESSION_MAX_AGE={settings.session_max_age} keeps a sign-in (and a stolen "
            f"cookie) valid for over {PRODUCTION_MAX_SESSION_AGE // 86400} days"
        )
    if settings.hsts_max_age == 0:
        found["hsts"] = "HSTS_MAX_AGE=0 lets browsers reach the site over plain http"
    if settings.realtime_session_check > PRODUCTION_MAX_REALTIME_SESSION_CHECK:
        found["realtime_session_check"] = (
            f"REALTIME_SESSION_CHECK={settings.realtime_session_check:g} keeps an event stream "
            "open that long after its session ended (expired, or signed out on a worker "
            f"the others do not hear from): at most {PRODUCTION_MAX_REALTIME_SESSION_CHECK}"
        )
    if not settings.rate_limit_enabled:
        found["rate_limits"] = (
            "RATE_LIMIT_ENABLED=false lets one client send unsafe requests, API calls and "
            "page loads without any limit (the sign-in limits stay)"
        )
    return found


def oauth_configured(settings: Settings) -> bool:
    """True when any sign-in provider (Google, GitHub, generic OIDC) is configured."""
    return bool(settings.google_client_id or settings.github_client_id or settings.oidc_providers)


def is_guessable(key: str) -> bool:
    """True for a key with little entropy whatever its length (see ``guessable_because``)."""
    return bool(guessable_because(key))


def guessable_because(key: str) -> str:
    """Why ``key`` is guessable, in a few words; empty when it is not.

    Catches what people type instead of generating a key. A repeated pattern: one
    character or word repeated (``"secret" * 8``), or too few different characters,
    found by how far zlib can shrink the key (a generated key keeps at least 27 bytes).
    Then the estimate of ``vibetuner.key_strength``: under 160 bits (an alphabet or
    keyboard run, a phrase of words, a random key of 128 bits) is guessable.
    """
    # zlib adds 8 bytes of header and checksum; what remains is the key's information.
    if len(set(key)) < 8 or len(zlib.compress(key.encode("utf-8"), 9)) - 8 < 24:
        return "a repeated pattern or too few different characters"
    bits = key_bits(key)
    if bits < MIN_KEY_BITS:
        return (
            f"about {bits:.0f} bits by its characters, {MIN_KEY_BITS} bits needed: runs "
            "such as abc, 123 or qwe, words, or too short a random value"
        )
    return ""


def guessable_fernet_key(keys: SecretStr | None) -> str:
    """Why one of the Fernet keys of ``TOKEN_ENCRYPTION_KEY`` is guessable; empty if none is.

    A Fernet key is 32 bytes in base64: generated, they look like noise. Text encoded as
    a key (a phrase, a run) is judged as any other key; bytes with few different values
    (zeros, a short pattern) are guessable too.
    """
    import base64
    import binascii

    raw = keys.get_secret_value() if keys is not None else ""
    for number, key in enumerate((p.strip() for p in raw.split(",") if p.strip()), 1):
        try:
            decoded = base64.urlsafe_b64decode(key.encode("ascii"))
        except (binascii.Error, UnicodeEncodeError, ValueError):
            continue  # not a Fernet key at all: the cipher refuses it with its own error
        repeated = any(decoded == decoded[:n] * (len(decoded) // n) for n in (1, 2, 4, 8, 16))
        if repeated or len(set(decoded)) < 16:
            return f"key {number}: a repeated pattern or too few different bytes"
        if decoded.isascii() and decoded.decode("ascii").isprintable():
            why = guessable_because(decoded.decode("ascii"))
            if why:
                return f"key {number} is text: {why}"
    return ""


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment and `.env`."""
    return Settings()
