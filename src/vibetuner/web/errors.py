"""The one table that turns vibetuner's errors into HTTP answers.

Services raise domain errors (``vibetuner.errors``) and know nothing of HTTP. A route
may catch one to answer in its own words; anything it lets through is answered here:
``{"detail": ..., "code": ...}`` for API clients, the message page for browsers.
"""

from __future__ import annotations

import logging

from fastapi import Request
from fastapi.responses import Response

from vibetuner import errors
from vibetuner.web.pages import problem

logger = logging.getLogger("vibetuner.errors")

# Most specific first; the first class the error is an instance of wins.
STATUS_BY_ERROR: tuple[tuple[type[errors.VibetunerError], int, str], ...] = (
    (errors.InvalidEmail, 422, "Invalid email address"),
    (errors.MagicLinkRefused, 400, "This link cannot be used"),
    (errors.NotSignedIn, 401, "Not signed in"),
    (errors.AccountDisabled, 403, "Account disabled"),
    (errors.OAuthSignInRefused, 409, "Sign-in refused"),
    (errors.OAuthProviderUnreachable, 502, "Sign-in failed"),
    (errors.OAuthFlowError, 400, "Sign-in failed"),
    (errors.RateLimitExceeded, 429, "Too many requests"),
    (errors.EmailDeliveryError, 502, "We could not send the email"),
    (errors.BlobTooLarge, 413, "Too large"),
    (errors.UploadTooLarge, 413, "Too large"),
    (errors.UploadError, 400, "Bad upload"),
    (errors.BlobNotFound, 404, "Not found"),
    (errors.BlobUnavailable, 404, "Not found"),
    (errors.BlobStorageError, 503, "Storage unavailable"),
    (errors.DuplicateKey, 409, "Already exists"),
    (errors.DatabaseUnavailable, 503, "Service unavailable"),
)

# Errors whose message is about the server, not the request: the client gets a generic line.
PRIVATE_MESSAGES = {
    503: "The service is unavailable; try again later.",
    502: "An upstream service failed; try again later.",
    500: "Internal server error.",
}


def status_for(exc: errors.VibetunerError) -> tuple[int, str]:
    """The HTTP status and page title for ``exc`` (500 for errors not in the table)."""
    for kind, status_code, title in STATUS_BY_ERROR:
        if isinstance(exc, kind):
            return status_code, title
    return 500, "Something went wrong"


async def vibetuner_error_handler(request: Request, exc: Exception) -> Response:
    """Answer a ``VibetunerError`` a route did not handle itself."""
    if not isinstance(exc, errors.VibetunerError):  # registered for VibetunerError only
        raise exc
    status_code, title = status_for(exc)
    if status_code >= 500:
        logger.error("%s on %s %s: %s", exc.code, request.method, request.url.path, exc)
        message = PRIVATE_MESSAGES.get(status_code, PRIVATE_MESSAGES[500])
    else:
        text = str(exc)
        message = (text[:1].upper() + text[1:]).rstrip(".") + "." if text else title + "."
    headers = None
    if isinstance(exc, errors.RateLimitExceeded):
        headers = {"Retry-After": str(exc.retry_after)}
    return problem(request, status_code, title, message, code=exc.code, headers=headers)
