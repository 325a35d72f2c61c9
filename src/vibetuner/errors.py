"""Every error vibetuner raises on purpose, in one place.

Each class has a stable machine-readable ``code``; API answers carry it next to the
human ``detail`` (``{"detail": ..., "code": ...}``). Services raise these and know
nothing of HTTP: the app's error table (``vibetuner.web.errors.ErrorTable``,
extended by each feature's ``errors()``) maps them to status codes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

from vibetuner.sizes import format_size

if TYPE_CHECKING:
    from vibetuner.services.images import ImageSize

TokenStatus = Literal["valid", "used", "expired", "unknown"]


class VibetunerError(Exception):
    """Base class of every error vibetuner raises on purpose."""

    code: ClassVar[str] = "vibetuner_error"
    #: Set by a route that refuses a request body part way: the answer closes the
    #: connection, so the rest of the body is never read.
    close_connection: bool = False

    def response_headers(self) -> dict[str, str]:
        """Headers the HTTP answer to this error carries (``Retry-After``)."""
        return {"Connection": "close"} if self.close_connection else {}

    def public_values(self) -> dict[str, str | int]:
        """Values the error table's message for this error may name (``%(minutes)s``)."""
        return {}


# --- configuration and infrastructure ---------------------------------------------------


class ConfigurationError(VibetunerError):
    """A setting is missing or invalid; the message says which and how to fix it."""

    code = "configuration_error"


class MemoryBackendUnsupported(VibetunerError, NotImplementedError):
    """The in-memory database cannot do this; the message says what to use instead."""

    code = "memory_backend_unsupported"


class DatabaseUnavailable(VibetunerError):
    """MongoDB could not be reached; the message names the host, never the password."""

    code = "database_unavailable"


# --- unique indexes ---------------------------------------------------------------------


class DuplicateKey(VibetunerError):
    """A write would break a unique index."""

    code = "duplicate_key"


class DuplicateEmail(DuplicateKey):
    """A user with this email address already exists."""

    code = "duplicate_email"

    def __init__(self, email: str) -> None:
        super().__init__(f"a user with email {email!r} already exists")
        self.email = email


class DuplicateOAuthAccount(DuplicateKey):
    """This provider account is already linked to a user."""

    code = "duplicate_oauth_account"

    def __init__(self, provider: str, provider_user_id: str) -> None:
        super().__init__(f"the {provider} account {provider_user_id!r} is already linked")
        self.provider = provider
        self.provider_user_id = provider_user_id


class DuplicateBlobKey(DuplicateKey):
    """A blob with this storage key already exists."""

    code = "duplicate_blob_key"

    def __init__(self, key: str) -> None:
        super().__init__(f"a blob with key {key!r} already exists")
        self.key = key


# --- sign-in ----------------------------------------------------------------------------


class InvalidEmail(VibetunerError):
    """The submitted address is not a valid email address; the message says why."""

    code = "invalid_email"


class MagicLinkRefused(VibetunerError):
    """A magic link cannot be used; ``status`` is ``used``, ``expired`` or ``unknown``."""

    code = "magic_link_refused"

    def __init__(self, status: TokenStatus) -> None:
        super().__init__(f"magic link refused: {status}")
        self.status = status


class NotSignedIn(VibetunerError):
    """The request needs a signed-in user and has none."""

    code = "not_signed_in"


class AccountDisabled(VibetunerError):
    """The account exists but is deactivated."""

    code = "account_disabled"


class OAuthSignInRefused(VibetunerError):
    """The provider account cannot be used to sign in; ``reason`` says why.

    ``reason`` is ``no_email``, ``bad_email``, ``unverified_email``, ``already_linked``,
    ``email_not_confirmed`` (the account's own address is not proven yet) or
    ``linked_before_confirmation``. ``message`` has ``%(name)s`` placeholders filled from
    ``values`` (so a page can translate it first); ``str()`` is the filled message.
    """

    code = "oauth_sign_in_refused"

    def __init__(self, reason: str, message: str, **values: str) -> None:
        super().__init__(message % values if values else message)
        self.reason = reason
        self.message = message
        self.values = values


class PasskeyRefused(VibetunerError):
    """A passkey ceremony (adding one, or signing in with one) was refused; ``reason`` says why.

    ``reason`` is ``challenge_unknown`` (used already, or started in another browser),
    ``challenge_expired``, ``unknown_passkey``, ``not_verified`` (a bad signature, origin
    or relying party), ``counter`` (the signature counter did not go up: a replayed answer
    or a copied authenticator), ``email_not_confirmed``, ``already_registered``,
    ``too_many`` or ``bad_request``. ``message`` is the English text people read translated.
    """

    code = "passkey_refused"

    def __init__(self, reason: str, message: str, **values: str) -> None:
        super().__init__(message % values if values else message)
        self.reason = reason
        self.message = message
        self.values = values


class EmailNotConfirmed(VibetunerError):
    """The account's address is not proven yet, so nothing may be attached to it."""

    code = "email_not_confirmed"


class OAuthFlowError(VibetunerError):
    """The provider refused, the state did not match, or the token exchange failed.

    The message is meant for the person signing in; it never holds tokens or codes.
    """

    code = "oauth_flow_failed"


class OAuthProviderUnreachable(OAuthFlowError):
    """The provider could not be reached (network error, timeout, bad discovery document)."""

    code = "oauth_provider_unreachable"


class RateLimitExceeded(VibetunerError):
    """Too many attempts; ``retry_after`` is the number of seconds until the window ends."""

    code = "rate_limited"

    def __init__(self, scope: str, retry_after: int) -> None:
        super().__init__(f"rate limit {scope!r} reached; retry in {retry_after} s")
        self.scope = scope
        self.retry_after = retry_after

    def response_headers(self) -> dict[str, str]:
        return {**super().response_headers(), "Retry-After": str(self.retry_after)}

    def public_values(self) -> dict[str, str | int]:
        return {"minutes": max(1, (self.retry_after + 59) // 60)}


# --- email ------------------------------------------------------------------------------


class InvalidApiToken(VibetunerError):
    """An ``Authorization: Bearer`` token that is missing, unknown, revoked or expired."""

    code = "invalid_token"


class InsufficientScope(VibetunerError):
    """The API token lacks the scope the route needs."""

    code = "insufficient_scope"


class TwoFactorCodeRefused(VibetunerError):
    """A two-factor or recovery code that is wrong, already used, or not expected now."""

    code = "two_factor_code_refused"


class TwoFactorAlreadyOn(VibetunerError):
    """Two-factor codes are already turned on for this user."""

    code = "two_factor_already_on"


class SecondFactorRequired(VibetunerError):
    """The action needs a second factor given recently (or a role needs one at all).

    ``setup`` is True when the user has to turn two-factor codes on first.
    """

    code = "second_factor_required"

    def __init__(self, message: str, *, setup: bool = False) -> None:
        super().__init__(message)
        self.setup = setup


class EmailDeliveryError(VibetunerError):
    """A message could not be handed to the mail system. The message never holds its body."""

    code = "email_delivery_failed"


# --- blob storage -----------------------------------------------------------------------


class BlobError(VibetunerError):
    """Base class of blob storage errors."""

    code = "blob_error"


class BlobTooLarge(BlobError):
    """The upload is larger than ``BLOB_MAX_SIZE``; nothing was stored."""

    code = "blob_too_large"

    def __init__(self, max_size: int) -> None:
        super().__init__(f"the file is larger than the limit of {format_size(max_size)}")
        self.max_size = max_size


class BlobNotFound(BlobError):
    """The blob's bytes are not in the backend."""

    code = "blob_not_found"


class BlobUnavailable(BlobError):
    """The blob is not ``available`` (still uploading, or the upload failed)."""

    code = "blob_unavailable"


class BlobStorageError(BlobError):
    """The backend failed to store or read bytes; the message names the backend, not secrets."""

    code = "blob_storage_failed"


class UploadError(VibetunerError):
    """The request body is not a usable multipart upload."""

    code = "bad_upload"


class UploadTooLarge(UploadError):
    """The request body is larger than the route accepts."""

    code = "upload_too_large"


class LastSignInMethod(VibetunerError):
    """Removing this sign-in method would leave the account with no way to sign in."""

    code = "last_sign_in_method"


class CannotViewAs(VibetunerError):
    """An admin may not open the app as this user (themselves, an admin, a deactivated user)."""

    code = "cannot_view_as"


class ViewAsRefused(VibetunerError):
    """Not while an admin views the app as a user: changing how the user signs in,
    their sessions, or deleting the account (the message says to go back first)."""

    code = "view_as_refused"


class UnsupportedPicture(UploadError):
    """A profile picture that is not a PNG, JPEG, GIF or WebP image."""

    code = "unsupported_picture"


class ImageTooLarge(UploadError):
    """An image whose header states more pixels than ``IMAGE_MAX_PIXELS``.

    Refused before anything decodes it: decoding needs memory for every pixel however
    small the file is (a decompression bomb). ``size`` is the size the header states.
    """

    code = "image_too_large"

    def __init__(self, message: str, *, size: ImageSize | None = None, max_pixels: int = 0) -> None:
        super().__init__(message)
        self.size = size
        self.max_pixels = max_pixels


class JobQueueUnavailable(VibetunerError):
    """The job broker (Redis) cannot be reached, so the job was not queued."""

    code = "job_queue_unavailable"


class JobArgumentError(VibetunerError, TypeError):
    """A job was enqueued with arguments its function does not take or that cannot be stored."""

    code = "job_arguments_invalid"
