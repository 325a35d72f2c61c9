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
    ],
)
def test_low_entropy_session_keys_are_refused(key):
    message = refusal(session_key=key)
    assert "SESSION_KEY is guessable" in message
    # The message names a command that prints a good key.
    assert "secrets.token_urlsafe(48)" in message


def test_generated_keys_are_accepted():
    for _ in range(2000):
        assert not is_guessable(secrets.token_urlsafe(48))
        assert not is_guessable(secrets.token_urlsafe(24))
        assert not is_guessable(secrets.token_hex(16))


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
