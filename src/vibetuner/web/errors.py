"""The one table that turns vibetuner's errors into HTTP answers.

Services raise domain errors (``vibetuner.errors``) and know nothing of HTTP. A route
may catch one to answer in its own words; anything it lets through is answered here:
``{"detail": ..., "code": ...}`` for API clients, the message page for browsers.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from fastapi import Request
from fastapi.responses import Response

from vibetuner import errors
from vibetuner.features import ErrorAnswer
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

# The core's errors; each feature adds its own (``Feature.errors``), so sign-in's,
# storage's and an app's feature's errors are answered the same way.
CORE_ERRORS: dict[type[errors.VibetunerError], ErrorAnswer] = {
    errors.RateLimitExceeded: ErrorAnswer(
        429,
        N_("Too many requests"),
        N_("Too many attempts. Try again in %(minutes)s minute(s)."),
    ),
    errors.EmailDeliveryError: ErrorAnswer(
        502,
        N_("We could not send the email"),
        N_("The email could not be sent right now. Please try again in a few minutes."),
    ),
    errors.UnsupportedPicture: ErrorAnswer(415, N_("Unsupported picture")),
    errors.ImageTooLarge: ErrorAnswer(422, N_("Image too large")),
    errors.UploadTooLarge: ErrorAnswer(413, N_("Too large")),
    errors.UploadError: ErrorAnswer(400, N_("Bad upload")),
    errors.DuplicateKey: ErrorAnswer(409, N_("Already exists")),
    errors.DatabaseUnavailable: ErrorAnswer(503, N_("Service unavailable")),
}
UNKNOWN = ErrorAnswer(500, N_("Something went wrong"))


class ErrorTable:
    """Error classes and how to answer each: the core's, then each feature's.

    The most specific class wins, whatever the order entries were added in: an error
    is looked up along its class's method resolution order.
    """

    def __init__(self, entries: Mapping[type[errors.VibetunerError], ErrorAnswer] = CORE_ERRORS):
        self.entries: dict[type[errors.VibetunerError], ErrorAnswer] = dict(entries)

    def add(self, entries: Mapping[type[errors.VibetunerError], ErrorAnswer], owner: str) -> None:
        """Add a feature's entries; a class another feature answers already is an error."""
        for kind, answer in entries.items():
            if not (isinstance(kind, type) and issubclass(kind, errors.VibetunerError)):
                raise errors.ConfigurationError(
                    f"the feature {owner!r} lists {kind!r} in errors(): only "
                    "VibetunerError subclasses are answered by the error table"
                )
            if kind in self.entries and self.entries[kind] != answer:
                raise errors.ConfigurationError(
                    f"the feature {owner!r} answers {kind.__name__} differently from "
                    "another feature"
                )
            self.entries[kind] = ErrorAnswer(*answer)

    def answer(self, kind: type[BaseException]) -> ErrorAnswer:
        """The status and title for errors of class ``kind`` (500 for unknown ones)."""
        for base in kind.__mro__:
            found = self.entries.get(base)
            if found is not None:
                return found
        return UNKNOWN


# Errors whose message is about the server, not the request: the client gets a generic line.
PRIVATE_MESSAGES = {
    503: N_("The service is unavailable; try again later."),
    502: N_("An upstream service failed; try again later."),
    500: N_("Something broke on our side. It has been logged; try again in a moment."),
}


def error_table(request: Request) -> ErrorTable:
    """The app's error table (the core's alone outside an app made by ``create_app``)."""
    from vibetuner.web.context import get_context

    try:
        context = get_context(request)
    except Exception:  # no app context (a broken start): the core's table still answers
        return ErrorTable()
    return context.find(ErrorTable) or ErrorTable()


async def vibetuner_error_handler(request: Request, exc: Exception) -> Response:
    """Answer a ``VibetunerError`` a route did not handle itself, from the error table."""
    if not isinstance(exc, errors.VibetunerError):  # registered for VibetunerError only
        raise exc
    status_code, title, public = error_table(request).answer(type(exc))
    values = exc.public_values() or None
    if status_code >= 500:
        logger.error("%s on %s %s: %s", exc.code, request.method, redacted_path(request.scope), exc)
        message = public or PRIVATE_MESSAGES.get(status_code, PRIVATE_MESSAGES[500])
    elif public:
        message = public
    else:
        text = str(exc)
        message = (text[:1].upper() + text[1:]).rstrip(".") + "." if text else title + "."
        values = None  # the error's own words: no placeholders to fill
    headers = exc.response_headers() or None
    return problem(
        request, status_code, title, message, code=exc.code, headers=headers, values=values
    )


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
