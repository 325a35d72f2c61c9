"""The app-wide limits per kind of request, and the ``RateLimit`` headers on answers.

Every request outside ``RATE_LIMIT_EXEMPT_PATHS`` is counted against the default of
its kind: ``RATE_LIMIT_UNSAFE`` for any method but GET, HEAD and OPTIONS (an unknown or
oddly cased method is unsafe too), else ``RATE_LIMIT_PAGES`` when the client asks for
HTML and ``RATE_LIMIT_API`` when it does not. The counter is per client and kind, over
the whole app, so no variant of a path or method escapes it: by signed-in session, else
by client address (``TRUSTED_PROXIES``).
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vibetuner.ratelimit.answer import too_many_requests
from vibetuner.ratelimit.keys import by_session
from vibetuner.ratelimit.limiter import LimiterUnavailable, rate_limit_headers
from vibetuner.ratelimit.state import limiter_of, record, recorded
from vibetuner.rates import Rate, parse_rates
from vibetuner.web.context import app_context

logger = logging.getLogger("vibetuner.ratelimit")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def request_kind(scope: Scope) -> str:
    """``unsafe``, ``pages`` or ``api``: which default limit counts the request."""
    if scope["method"] not in SAFE_METHODS:
        return "unsafe"
    accept = ""
    for name, value in scope["headers"]:
        if name == b"accept":
            accept += value.decode("latin-1")
    return "pages" if "text/html" in accept and "application/json" not in accept else "api"


def is_exempt(path: str, prefixes: list[str]) -> bool:
    """True when ``path`` is one of ``prefixes`` or below one (whole segments only)."""
    return path in prefixes or path.startswith(tuple(p.rstrip("/") + "/" for p in prefixes))


class RateLimitMiddleware:
    """Count each request against its kind's default; add the headers to every answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._rates: dict[str, tuple[Rate, ...]] | None = None

    def defaults(self, settings: Any) -> dict[str, tuple[Rate, ...]]:
        """The default rates by kind (read once from the settings)."""
        if self._rates is None:
            self._rates = {
                "unsafe": parse_rates(settings.rate_limit_unsafe),
                "pages": parse_rates(settings.rate_limit_pages),
                "api": parse_rates(settings.rate_limit_api),
            }
        return self._rates

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        context = app_context(scope["app"])
        settings = context.settings
        if not settings.rate_limit_enabled:
            await self.app(scope, receive, send)
            return
        defaults = self.defaults(settings)
        # Read the Accept header only when the safe kinds have limits of their own (by
        # default only unsafe requests do): a page's GET then costs nothing here.
        if scope["method"] not in SAFE_METHODS:
            kind = "unsafe"
        elif defaults["pages"] or defaults["api"]:
            kind = request_kind(scope)
        else:
            kind = "api"
        rates = defaults[kind]
        if rates and not is_exempt(scope["path"], settings.rate_limit_exempt_paths):
            limiter = limiter_of(context)
            try:
                decisions = await limiter.hit(kind, by_session(HTTPConnection(scope)), rates)
            except LimiterUnavailable as exc:
                # A limit protects the app; the backend being away must not take it down.
                logger.warning("default rate limit not checked: %s", exc)
                decisions = []
            record(scope, decisions)
            if any(d.exceeded for d in decisions):
                answer = too_many_requests(Request(scope, receive), decisions)
                await answer(scope, receive, send)
                return

        async def send_with_headers(message: Message) -> None:
            # Route limits (@rate_limit) record their decisions while the route runs.
            if message["type"] == "http.response.start":
                found = recorded(scope)
                if found:
                    headers = MutableHeaders(scope=message)
                    if "ratelimit-policy" not in headers:  # a 429 answer has its own
                        for name, value in rate_limit_headers(found).items():
                            if name == "Retry-After":
                                headers[name] = value  # the only one an answer may have
                            else:
                                headers.append(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)
