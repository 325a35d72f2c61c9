"""Encryption at rest of stored provider tokens (Fernet, from ``cryptography``)."""

from __future__ import annotations

from vibetuner.config import Settings
from vibetuner.errors import ConfigurationError

PREFIX = "fernet:"


class TokenCipher:
    """Encrypts and decrypts short secrets with one or more Fernet keys.

    ``TOKEN_ENCRYPTION_KEY`` may hold several comma-separated keys: the first encrypts,
    all decrypt, so keys can be rotated without losing stored tokens.
    """

    def __init__(self, keys: list[str]) -> None:
        from cryptography.fernet import Fernet, MultiFernet

        if not keys:
            raise ConfigurationError("TOKEN_ENCRYPTION_KEY is empty")
        try:
            self._fernet = MultiFernet([Fernet(key.encode("ascii")) for key in keys])
        except (ValueError, UnicodeEncodeError):
            raise ConfigurationError(
                "TOKEN_ENCRYPTION_KEY must be Fernet keys (32 url-safe base64-encoded bytes, "
                "comma-separated); generate one with: python -c 'from cryptography.fernet "
                "import Fernet; print(Fernet.generate_key().decode())'"
            ) from None

    def encrypt(self, value: str) -> str:
        """The encrypted form of ``value``, marked with a ``fernet:`` prefix."""
        return PREFIX + self._fernet.encrypt(value.encode("utf-8")).decode("ascii")

    def decrypt(self, value: str) -> str:
        """The clear text of a value from :meth:`encrypt`; unmarked values are returned as is."""
        from cryptography.fernet import InvalidToken

        if not value.startswith(PREFIX):
            return value
        try:
            return self._fernet.decrypt(value[len(PREFIX) :].encode("ascii")).decode("utf-8")
        except InvalidToken:
            raise ConfigurationError(
                "a stored token cannot be decrypted with TOKEN_ENCRYPTION_KEY "
                "(wrong or rotated-out key)"
            ) from None


def cipher_from_settings(settings: Settings) -> TokenCipher | None:
    """The cipher for ``TOKEN_ENCRYPTION_KEY``, or None when it is not set."""
    if settings.token_encryption_key is None:
        return None
    raw = settings.token_encryption_key.get_secret_value()
    keys = [part.strip() for part in raw.split(",") if part.strip()]
    if not keys:
        return None
    return TokenCipher(keys)
