"""Domain errors raised by vibetuner instead of raw driver exceptions."""

from __future__ import annotations


class VibetunerError(Exception):
    """Base class of every error vibetuner raises on purpose."""


class DuplicateKey(VibetunerError):
    """A write would break a unique index."""


class DuplicateEmail(DuplicateKey):
    """A user with this email address already exists."""

    def __init__(self, email: str) -> None:
        super().__init__(f"a user with email {email!r} already exists")
        self.email = email


class DuplicateOAuthAccount(DuplicateKey):
    """This provider account is already linked to a user."""

    def __init__(self, provider: str, provider_user_id: str) -> None:
        super().__init__(f"the {provider} account {provider_user_id!r} is already linked")
        self.provider = provider
        self.provider_user_id = provider_user_id


class DuplicateBlobKey(DuplicateKey):
    """A blob with this storage key already exists."""

    def __init__(self, key: str) -> None:
        super().__init__(f"a blob with key {key!r} already exists")
        self.key = key


class DatabaseUnavailable(VibetunerError):
    """MongoDB could not be reached; the message names the host, never the password."""


class ConfigurationError(VibetunerError):
    """A setting is missing or invalid; the message says which and how to fix it."""
