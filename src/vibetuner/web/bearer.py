"""Requests with ``Authorization: Bearer``: their cookies are dropped before anything reads them.

An API token authenticates the request by itself. Dropping the cookies means such a
request can never also act as a browser's signed-in session (no CSRF check is needed
for it, since nothing it can reach trusts ambient credentials), and a page's script
that sends both gets the token's identity only.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

# Set on the scope of a request whose cookies were dropped.
SCOPE_BEARER = "vibetuner.bearer"


def has_bearer(scope: Scope) -> bool:
    """True when the request has an ``Authorization: Bearer ...`` header."""
    for name, value in scope.get("headers") or ():
        if name == b"authorization" and value[:7].lower() == b"bearer ":
            return True
    return False


class BearerCookieMiddleware:
    """Removes the ``Cookie`` headers of requests that carry a bearer token."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and has_bearer(scope):
            scope = dict(scope)
            scope["headers"] = [(k, v) for k, v in scope["headers"] if k != b"cookie"]
            scope[SCOPE_BEARER] = True
        await self.app(scope, receive, send)
