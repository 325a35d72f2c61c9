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
from vibetuner.i18n import N_
from vibetuner.logs import redacted_path
from vibetuner.request_id import HEADER, current_request_id
from vibetuner.web.context import get_context
from vibetuner.web.debug_page import debug_page
from vibetuner.web.htmx import hx_redirect
from vibetuner.web.identity import wants_html
from vibetuner.web.pages import problem

HOME = ("/", N_("Back to the home page"))

logger = logging.getLogger("vibetuner.errors")

# Most specific first; the first class the error is an instance of wins.
STATUS_BY_ERROR: tuple[tuple[type[errors.VibetunerError], int, str], ...] = (
    (errors.InvalidEmail, 422, N_("Invalid email address")),
    (errors.MagicLinkRefused, 400, N_("This link cannot be used")),
    (errors.NotSignedIn, 401, N_("Not signed in")),
    (errors.AccountDisabled, 403, N_("Account disabled")),
    (errors.OAuthSignInRefused, 409, N_("Sign-in refused")),
    (errors.EmailNotConfirmed, 403, N_("Confirm your email address first")),
    (errors.PasskeyRefused, 400, N_("Passkey refused")),
    (errors.OAuthProviderUnreachable, 502, N_("Sign-in failed")),
    (errors.OAuthFlowError, 400, N_("Sign-in failed")),
    (errors.RateLimitExceeded, 429, N_("Too many requests")),
    (errors.InvalidApiToken, 401, N_("Not signed in")),
    (errors.InsufficientScope, 403, N_("Forbidden")),
    (errors.TwoFactorCodeRefused, 422, N_("Code not accepted")),
    (errors.TwoFactorAlreadyOn, 409, N_("Conflict")),
    (errors.SecondFactorRequired, 403, N_("Confirm it is you")),
    (errors.EmailDeliveryError, 502, N_("We could not send the email")),
    (errors.LastSignInMethod, 409, N_("Cannot remove the last way to sign in")),
    (errors.CannotViewAs, 409, N_("Conflict")),
    (errors.ViewAsRefused, 403, N_("Forbidden")),
    (errors.UnsupportedPicture, 415, N_("Unsupported picture")),
    (errors.ImageTooLarge, 422, N_("Image too large")),
    (errors.BlobTooLarge, 413, N_("Too large")),
    (errors.UploadTooLarge, 413, N_("Too large")),
    (errors.UploadError, 400, N_("Bad upload")),
    (errors.BlobNotFound, 404, N_("Not found")),
    (errors.BlobUnavailable, 404, N_("Not found")),
    (errors.BlobStorageError, 503, N_("Storage unavailable")),
    (errors.DuplicateKey, 409, N_("Already exists")),
    (errors.DatabaseUnavailable, 503, N_("Service unavailable")),
    (errors.JobQueueUnavailable, 503, N_("Service unavailable")),
)

# Errors whose message is about the server, not the request: the client gets a generic line.
PRIVATE_MESSAGES = {
    503: N_("The service is unavailable; try again later."),
    502: N_("An upstream service failed; try again later."),
    500: N_("Something broke on our side. It has been logged; try again in a moment."),
}


def status_for(exc: errors.VibetunerError) -> tuple[int, str]:
    """The HTTP status and page title for ``exc`` (500 for errors not in the table)."""
    for kind, status_code, title in STATUS_BY_ERROR:
        if isinstance(exc, kind):
            return status_code, title
    return 500, N_("Something went wrong")


async def vibetuner_error_handler(request: Request, exc: Exception) -> Response:
    """Answer a ``VibetunerError`` a route did not handle itself."""
    if not isinstance(exc, errors.VibetunerError):  # registered for VibetunerError only
        raise exc
    status_code, title = status_for(exc)
    if status_code >= 500:
        logger.error("%s on %s %s: %s", exc.code, request.method, redacted_path(request.scope), exc)
        message = PRIVATE_MESSAGES.get(status_code, PRIVATE_MESSAGES[500])
    else:
        text = str(exc)
        message = (text[:1].upper() + text[1:]).rstrip(".") + "." if text else title + "."
    headers = None
    if isinstance(exc, errors.RateLimitExceeded):
        headers = {"Retry-After": str(exc.retry_after)}
    return problem(request, status_code, title, message, code=exc.code, headers=headers)


HTTP_TITLES = {
    400: N_("Bad request"),
    401: N_("Not signed in"),
    403: N_("Forbidden"),
    404: N_("Page not found"),
    405: N_("Method not allowed"),
    409: N_("Conflict"),
    413: N_("Too large"),
    422: N_("Invalid input"),
    429: N_("Too many requests"),
}


async def http_error_page(request: Request, exc: Exception) -> Response:
    """``HTTPException`` answers: FastAPI's JSON for API clients, a page for browsers.

    Redirects raised as exceptions (``require_user``'s 303) stay redirects; an htmx
    request is sent to the sign-in page with ``HX-Redirect`` instead, since a 303
    would be followed and its page swapped into the fragment.
    """
    from fastapi.exception_handlers import http_exception_handler
    from starlette.exceptions import HTTPException

    if not isinstance(exc, HTTPException):
        raise exc
    headers = dict(exc.headers or {})
    if 300 <= exc.status_code < 400:
        location = headers.get("Location")
        if location and request.headers.get("hx-request") == "true":
            return hx_redirect(location)
        return Response(status_code=exc.status_code, headers=headers)
    if not wants_html(request):
        return await http_exception_handler(request, exc)
    title = HTTP_TITLES.get(exc.status_code, N_("Something went wrong"))
    detail = exc.detail if isinstance(exc.detail, str) else ""
    if exc.status_code == 404 and detail in ("", "Not Found"):
        detail = N_("There is nothing at this address. Check the link, or start again from home.")
    message = detail or title + "."
    return problem(request, exc.status_code, title, message, headers=headers, link=HOME)


async def server_error_page(request: Request, exc: Exception) -> Response:
    """An unhandled error: the client learns nothing of it (in development, a browser
    gets the traceback page). Starlette raises the error again once this answer is sent,
    and the server logs its traceback: logged here too, it would be printed twice.
    """
    logger.error(
        "unhandled error on %s %s: %s: %s",
        request.method,
        redacted_path(request.scope),
        type(exc).__name__,
        exc,
    )
    if wants_html(request) and _in_development(request):
        answer: Response = debug_page(request, exc)
    else:
        answer = problem(
            request,
            500,
            N_("Something went wrong"),
            PRIVATE_MESSAGES[500],
            code="internal_error",
            link=HOME,
        )
    # This answer is sent by Starlette's outermost handler, around RequestIdMiddleware.
    request_id = current_request_id()
    if request_id is not None:
        answer.headers[HEADER] = request_id
    return answer


def _in_development(request: Request) -> bool:

    try:
        return get_context(request).settings.environment == "development"
    except Exception:  # no app context (a broken start): never show internals
        return False
