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

    from vibetuner.i18n import normalize

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
    )

    # --- application -------------------------------------------------------------------
    environment: Literal["development", "test", "production"] = "development"
    app_name: str = "vibetuner"
    base_url: str = "http://127.0.0.1:8000"
    data_dir: Path = Path("data")
    log_level: str = "INFO"
    # text (readable, coloured) or json (one object per line); auto: json in production.
    log_format: Literal["auto", "text", "json"] = "auto"
    # Levels of single loggers: "vibetuner.jobs=DEBUG,uvicorn.access=WARNING".
    log_levels: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    # Seconds `vibetuner run prod` lets in-flight requests finish after SIGTERM.
    shutdown_grace_seconds: int = Field(default=30, ge=0)
    # Languages offered (the first that matches a request wins) and the fallback.
    locales: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["en", "es", "de"])
    default_locale: str = "en"

    # --- MongoDB ---------------------------------------------------------------------
    mongodb_url: SecretStr | None = None
    mongodb_db: str | None = None
    mongodb_timeout_ms: int = Field(default=3000, ge=100, le=60000)

    # --- sessions --------------------------------------------------------------------
    session_key: SecretStr | None = None
    session_cookie: str = "vibetuner_session"
    # Absolute lifetime of a sign-in, counted from the sign-in; never extended.
    session_max_age: int = Field(default=14 * 24 * 3600, ge=60)
    # A session unused this long ends (0: only SESSION_MAX_AGE applies).
    session_idle_timeout: int = Field(default=3 * 24 * 3600, ge=0)

    # --- request security (CSRF, headers, proxies) ------------------------------------
    # Other sites allowed to send unsafe requests (scheme://host[:port]), e.g. a separate
    # front-end origin; this site itself (BASE_URL and the Host header) always is.
    csrf_trusted_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    security_headers: bool = True
    content_security_policy: str = DEFAULT_CSP
    csp_report_only: bool = False
    hsts_max_age: int = Field(default=2 * 365 * 24 * 3600, ge=0)
    # Addresses or networks of the reverse proxies in front of the app ("*": any peer).
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Longest wait for the next piece of a request body before 408 and close (0: no limit).
    request_body_timeout: float = Field(default=15.0, ge=0)
    # Downgrades production accepts only when named here (see INSECURE_OPT_OUTS).
    allow_insecure_production: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # /docs, /redoc and /openapi.json; unset: served except in production.
    api_docs: bool | None = None

    # --- background jobs ---------------------------------------------------------------
    # Unset: jobs run in the web process. Set: they go to Redis, for `vibetuner run worker`.
    redis_url: SecretStr | None = None
    jobs_queue: str = Field(default="default", pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    jobs_concurrency: int = Field(default=16, ge=1, le=1000)
    # Seconds before a job whose worker went silent is handed to another worker.
    jobs_idle_timeout: float = Field(default=60, gt=0)
    # Seconds a stopping process waits for running jobs.
    jobs_shutdown_grace: float = Field(default=10, ge=0)
    # /health also reports how many jobs wait.
    jobs_health_depth: bool = False
    # A worker that has not beaten for this many seconds counts as dead (`jobs health`).
    jobs_heartbeat_timeout: float = Field(default=60, ge=1)

    # --- sign-in ---------------------------------------------------------------------
    magic_link_ttl_seconds: int = Field(default=15 * 60, ge=60, le=7 * 24 * 3600)
    magic_link_rate_per_email: int = Field(default=5, ge=1)
    magic_link_rate_per_ip: int = Field(default=30, ge=1)
    magic_link_rate_window_seconds: int = Field(default=15 * 60, ge=1)
    login_redirect: str = "/"
    token_encryption_key: SecretStr | None = None

    google_client_id: str | None = None
    google_client_secret: SecretStr | None = None
    github_client_id: str | None = None
    github_client_secret: SecretStr | None = None
    oidc_providers: list[OIDCProviderSettings] = Field(default_factory=list)

    # --- email -----------------------------------------------------------------------
    # A built-in name, or a dotted path to an app's own class ("myapp.mail:SesBackend").
    email_backend: str = Field(default="console", pattern=BACKEND_PATTERN)
    email_from: str = "vibetuner <no-reply@localhost>"
    email_file_dir: Path = Path("data/outbox")
    smtp_host: str = "localhost"
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_security: Literal["none", "starttls", "tls"] = "starttls"
    smtp_timeout: float = Field(default=10.0, gt=0)

    # --- blob storage ----------------------------------------------------------------
    blob_backend: str = Field(default="local", pattern=BACKEND_PATTERN)
    blob_dir: Path | None = None
    blob_max_size: int = Field(default=50 * 1024 * 1024, ge=1)
    blob_url_ttl_seconds: int = Field(default=3600, ge=1)
    blob_redirect_to_presigned: bool = False
    blob_chunk_size: int = Field(default=1024 * 1024, ge=4096)
    # Largest image (width x height) an upload may be, read from its header before anything
    # decodes it: 50 megapixels holds a 50 MP camera's photo (8160 x 6120), and decoding
    # one takes at most 200 MB (4 bytes a pixel).
    image_max_pixels: int = Field(default=50_000_000, ge=1)
    s3_bucket: str | None = None
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_create_bucket: bool = False
    s3_part_size: int = Field(default=8 * 1024 * 1024, ge=5 * 1024 * 1024)
    s3_max_concurrency: int = Field(default=2, ge=1)
    s3_max_io_queue: int = Field(default=2, ge=1)

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
)
# Longest sign-in production accepts without the opt-out: a stolen cookie lasts this long.
PRODUCTION_MAX_SESSION_AGE = 30 * 24 * 3600
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
            "tokens are stored encrypted; generate one with: python -c 'from "
            "cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')"
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


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment and `.env`."""
    return Settings()
