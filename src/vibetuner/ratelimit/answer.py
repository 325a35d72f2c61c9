"""The answer to a request over its limit: 429 with ``Retry-After`` and the ``RateLimit``
headers; JSON for API clients, a page for browsers, a message swapped into the page's
messages for htmx (through :func:`vibetuner.web.pages.problem`)."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.requests import Request
from starlette.responses import Response

from vibetuner.errors import RateLimitExceeded
from vibetuner.i18n import N_
from vibetuner.ratelimit.limiter import Decision, RateLimited, rate_limit_headers, retry_after

TITLE = N_("Too many requests")
MESSAGE = N_(
    "You have sent a lot of requests in a short time. Please wait %(seconds)s s and try again."
)


def too_many_requests(request: Request, decisions: Sequence[Decision]) -> Response:
    """The 429 answer for ``decisions`` (at least one exceeded)."""
    from vibetuner.web.pages import problem

    wait = retry_after(decisions)
    return problem(
        request,
        429,
        TITLE,
        MESSAGE,
        code=RateLimitExceeded.code,
        headers=rate_limit_headers(decisions),
        values={"seconds": wait},
        link=("/", N_("Back to the home page")),
    )


async def rate_limited_handler(request: Request, exc: Exception) -> Response:
    """Exception handler of :class:`RateLimited` (a route's limit refused the request)."""
    if not isinstance(exc, RateLimited):
        raise exc
    from vibetuner.ratelimit.state import recorded

    # Every rate the request was counted against (the defaults too), not just this one.
    return too_many_requests(request, recorded(request.scope) or exc.decisions)
