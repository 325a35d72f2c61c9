"""ENVIRONMENT=production refuses weak settings, all of them named in one message."""

from __future__ import annotations

import secrets

import pytest
from pydantic import ValidationError

from vibetuner.config import Settings, is_guessable

SAFE = {
    "environment": "production",
    "session_key": "Zr8-Qe2vLx0bN6tKp3WmYc9HfUa1Sj5GdTo7Ei4Rn_VwXy",
    "mongodb_url": "mongodb://db.internal:27017/app",
    "email_backend": "smtp",
    "smtp_host": "smtp.example.com",
    "base_url": "https://app.example.com",
}
FERNET_KEY = "kXo2Hq3n2lS0n8o3m1ZxQ7hYp3tq4uVb9vC6Wq1dE0s="


def production(**changes: object) -> Settings:
    return Settings(_env_file=None, **{**SAFE, **changes})


def refusal(**changes: object) -> str:
    with pytest.raises(ValidationError) as caught:
        production(**changes)
    return str(caught.value)


def test_safe_settings_load():
    assert production().is_production


@pytest.mark.parametrize(
    "key",
    [
        "a" * 40,
        "ab" * 20,
        "secret" * 8,
        "correcthorsebattery" * 3,
        "passwordpasswordpasswordpassword12",
        "0123456701234567012345670123456701234567",
        "01" * 20,
    ],
)
def test_low_entropy_session_keys_are_refused(key):
    message = refusal(session_key=key)
    assert "SESSION_KEY is guessable" in message
    # The message names a command that prints a good key.
    assert "secrets.token_urlsafe(48)" in message


@pytest.mark.parametrize(
    "key",
    [
        # The two of the issue: the 36-character alphabet, and a phrase.
        "abcdefghijklmnopqrstuvwxyz0123456789",
        "my-super-secret-session-key-for-production",
        "MySuperSecretSessionKeyForProduction2024",
        "MY-SUPER-SECRET-SESSION-KEY-FOR-PRODUCTION",
        "This is my very long and secret sentence for the session key of production!",
        "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567",
        "qwertyuiopasdfghjklzxcvbnm-1234567890",
        # Random, but 128 bits: less than the 160 production asks for.
        "3f1c8a9be02d4c7f9a6b1e5d0c2f8a47",
    ],
)
def test_keys_without_real_entropy_are_refused(key):
    message = refusal(session_key=key)
    assert "SESSION_KEY is guessable" in message and "160 bits" in message
    assert key not in message  # the key itself is never repeated


def test_generated_keys_are_accepted():
    for _ in range(2000):
        assert not is_guessable(secrets.token_urlsafe(48))
        assert not is_guessable(secrets.token_hex(32))
    assert production(session_key=secrets.token_urlsafe(48)).is_production
    assert production(session_key=secrets.token_hex(32)).is_production


# Each downgrade: the settings that make it, and the name that accepts it.
DOWNGRADES = [
    ({"trusted_proxies": "*"}, "trusted_proxies", "TRUSTED_PROXIES=*"),
    ({"security_headers": False}, "security_headers", "SECURITY_HEADERS=false"),
    ({"content_security_policy": ""}, "csp", "CONTENT_SECURITY_POLICY"),
    ({"csp_report_only": True}, "csp_report_only", "CSP_REPORT_ONLY=true"),
    (
        {"csrf_trusted_origins": "https://ok.example.com,http://shop.example.com"},
        "csrf_http_origins",
        "http://shop.example.com",
    ),
    ({"session_max_age": 10 * 365 * 24 * 3600}, "session_max_age", "SESSION_MAX_AGE"),
    ({"hsts_max_age": 0}, "hsts", "HSTS_MAX_AGE=0"),
    ({"rate_limit_enabled": False}, "rate_limits", "RATE_LIMIT_ENABLED=false"),
    # An event stream outlives its ended session (expired, or revoked on another worker
    # without a shared broker) until this check: an hour of a stolen cookie's events.
    ({"realtime_session_check": 3600}, "realtime_session_check", "REALTIME_SESSION_CHECK=3600"),
]


@pytest.mark.parametrize(("change", "name", "named"), DOWNGRADES)
def test_each_downgrade_is_refused_unless_named(change, name, named):
    message = refusal(**change)
    assert named in message and f"ALLOW_INSECURE_PRODUCTION={name}" in message
    # Another downgrade's name does not accept this one.
    other = next(n for _, n, _ in DOWNGRADES if n != name)
    assert named in refusal(**change, allow_insecure_production=other)
    assert production(**change, allow_insecure_production=name).is_production


def test_downgrades_are_accepted_from_the_environment(monkeypatch):
    monkeypatch.setenv("TRUSTED_PROXIES", "*")
    monkeypatch.setenv("SECURITY_HEADERS", "false")
    monkeypatch.setenv("ALLOW_INSECURE_PRODUCTION", "security_headers, trusted_proxies")
    assert production().allow_insecure_production == ["security_headers", "trusted_proxies"]
    monkeypatch.setenv("ALLOW_INSECURE_PRODUCTION", "security_headers")
    assert "TRUSTED_PROXIES=*" in refusal()


def test_an_unknown_opt_out_is_an_error():
    with pytest.raises(ValidationError, match="'everything' is not one of"):
        production(allow_insecure_production="everything")


def test_each_downgrade_is_one_sentence_in_the_one_message():
    changes: dict[str, object] = {}
    for change, _, _ in DOWNGRADES:
        changes.update(change)
    message = refusal(**changes)
    assert message.count("ENVIRONMENT=production refuses unsafe settings") == 1
    for _, name, named in DOWNGRADES:
        assert named in message and f"ALLOW_INSECURE_PRODUCTION={name}" in message
    names = ",".join(name for _, name, _ in DOWNGRADES)
    assert production(**changes, allow_insecure_production=names).is_production


def test_a_realtime_session_check_of_five_minutes_is_fine():
    assert production(realtime_session_check=300).is_production


def test_a_month_long_session_is_fine():
    assert production(session_max_age=30 * 24 * 3600).is_production


def test_file_email_backend_is_refused():
    assert "EMAIL_BACKEND=file" in refusal(email_backend="file")


@pytest.mark.parametrize("host", ["smtp.example.com", "10.0.0.5", "mail"])
def test_unencrypted_smtp_to_another_host_is_refused(host):
    message = refusal(smtp_security="none", smtp_host=host)
    assert "SMTP_SECURITY=none" in message and host in message


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "::1"])
def test_unencrypted_smtp_to_localhost_is_allowed(host):
    assert production(smtp_security="none", smtp_host=host).smtp_security == "none"


@pytest.mark.parametrize(
    "provider",
    [
        {"github_client_id": "gh-id", "github_client_secret": "gh-secret"},
        {"google_client_id": "g-id", "google_client_secret": "g-secret"},
        {
            "oidc_providers": [
                {
                    "name": "sso",
                    "client_id": "c",
                    "client_secret": "s",
                    "discovery_url": "https://sso.example.com/.well-known/openid-configuration",
                }
            ]
        },
    ],
)
def test_oauth_without_token_encryption_key_is_refused(provider):
    assert "TOKEN_ENCRYPTION_KEY must be set" in refusal(**provider)
    assert production(**provider, token_encryption_key=FERNET_KEY).is_production


@pytest.mark.parametrize(
    "token",
    [
        "my-super-secret-metrics-token-for-production",
        "a" * 40,
        "metricsmetricsmetricsmetricsmetrics",
        "abcdefghijklmnopqrstuvwxyz0123456789",
        # Random, but 128 bits.
        "3f1c8a9be02d4c7f9a6b1e5d0c2f8a47",
    ],
)
def test_a_guessable_metrics_token_is_refused(token):
    # /metrics on the app's own port answers whoever guesses it.
    message = refusal(metrics_token=token)
    assert "METRICS_TOKEN is guessable" in message and token not in message
    assert "secrets.token_urlsafe(32)" in message
    for _ in range(200):
        assert production(metrics_token=secrets.token_urlsafe(32)).is_production


def fernet_of(raw: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(raw).decode()


@pytest.mark.parametrize(
    "raw",
    [
        b"\0" * 32,
        b"my-super-secret-encryption-key!!",
        b"abcdefghijklmnopqrstuvwxyz012345",
        bytes(range(16)) * 2,
    ],
)
def test_a_guessable_token_encryption_key_is_refused(raw):
    # A valid Fernet key whose 32 bytes are a phrase, a run or zeros: two-factor secrets and
    # provider tokens in a copy of the database are as good as clear text.
    key = fernet_of(raw)
    message = refusal(token_encryption_key=key)
    assert "TOKEN_ENCRYPTION_KEY" in message and "guessable" in message and key not in message
    # Also as the second key of a rotation.
    assert "guessable" in refusal(token_encryption_key=f"{FERNET_KEY},{key}")
    from cryptography.fernet import Fernet

    for _ in range(200):
        assert production(token_encryption_key=Fernet.generate_key().decode()).is_production


def test_one_message_names_every_problem():
    message = refusal(
        session_key="a" * 40,
        email_backend="file",
        github_client_id="gh-id",
        github_client_secret="gh-secret",
    )
    assert message.count("ENVIRONMENT=production refuses unsafe settings") == 1
    for named in ("SESSION_KEY", "EMAIL_BACKEND=file", "TOKEN_ENCRYPTION_KEY"):
        assert named in message


def test_development_accepts_the_same_settings():
    settings = Settings(
        _env_file=None,
        environment="development",
        session_key="a" * 40,
        email_backend="file",
        smtp_security="none",
        smtp_host="smtp.example.com",
        github_client_id="gh-id",
    )
    assert not settings.is_production


# --- the API documentation -------------------------------------------------------------

DOCS = ("/docs", "/redoc", "/openapi.json")


async def docs_answers(settings: Settings, **app_options: object) -> dict[str, int]:
    import httpx

    from vibetuner import create_app

    # No lifespan (and no database): these pages read nothing stored.
    application = create_app(settings=settings, **app_options)
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as http:
        return {path: (await http.get(path)).status_code for path in DOCS}


async def test_production_serves_no_api_docs_by_default():
    assert await docs_answers(production()) == dict.fromkeys(DOCS, 404)


async def test_api_docs_can_be_turned_on_in_production_and_off_elsewhere():
    assert await docs_answers(production(api_docs=True)) == dict.fromkeys(DOCS, 200)
    development = Settings(_env_file=None, environment="development")
    assert await docs_answers(development) == dict.fromkeys(DOCS, 200)
    off = Settings(_env_file=None, environment="development", api_docs=False)
    assert await docs_answers(off) == dict.fromkeys(DOCS, 404)


async def test_an_app_that_names_its_docs_keeps_them():
    answers = await docs_answers(production(), docs_url="/docs")
    assert answers == {"/docs": 200, "/redoc": 404, "/openapi.json": 200}


async def test_the_redoc_page_has_no_inline_element_without_the_nonce():
    import re

    import httpx

    from vibetuner import create_app

    application = create_app(settings=Settings(_env_file=None, environment="test"))
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        for path in ("/redoc", "/docs"):
            page = await http.get(path)
            nonce = re.search(r"'nonce-([^']+)'", page.headers["content-security-policy"])
            assert nonce is not None
            inline = re.findall(r"<(script|style)([^>]*)>", page.text)
            assert inline, path
            for tag, attributes in inline:
                if tag == "script" and "src=" in attributes:
                    continue
                assert f'nonce="{nonce.group(1)}"' in attributes, (path, tag, attributes)


def test_an_accepted_downgrade_is_logged_at_startup(caplog):
    from vibetuner import create_app

    with caplog.at_level("WARNING", logger="vibetuner.app"):
        create_app(
            settings=production(trusted_proxies="*", allow_insecure_production="trusted_proxies")
        )
    (record,) = [r for r in caplog.records if "ALLOW_INSECURE_PRODUCTION" in r.getMessage()]
    assert "trusted_proxies accepts: TRUSTED_PROXIES=*" in record.getMessage()
