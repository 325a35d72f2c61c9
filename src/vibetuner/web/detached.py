"""Long-lived responses that outlive the middleware: ``DetachedResponses`` and ``detach``.

An event stream stays open for hours, mostly idle. Run inside the app, it keeps every
middleware's frame, its closures and the route's request objects alive all that time
(about 17 KiB per stream here, more than the connection itself). A response that has
sent its head through the middleware (so the security headers, the request id and the
session cookie are applied as for any response) can instead hand the rest of its work
to ``detach``: the middleware returns, and ``DetachedResponses``, outermost, runs the
rest with the server's own ``receive`` and ``send``. The body then bypasses the
middleware, which is what such a response wants: nothing in between rewrites it.
"""

from __future__ import annotations

from typing import Protocol

from starlette.types import ASGIApp, Receive, Scope, Send


class Rest(Protocol):
    """What a detached response runs once the middleware has returned."""

    async def run(self, receive: Receive, send: Send) -> None:
        """Finish the response with the server's ``receive`` and ``send``."""

    def abandon(self) -> None:
        """The app failed after ``detach``: ``run`` will not be called; let go."""


_SLOT = "vibetuner.detached"
# What a detached response's scope keeps: the server's keys (the ASGI spec's) and what
# names the route that served it (shared objects, read by tracing when it ends).
_KEPT = frozenset(
    {
        *("type", "asgi", "http_version", "method", "scheme", "path", "raw_path"),
        *("query_string", "root_path", "headers", "client", "server", "state"),
        *("extensions", "app", "router", "route", "endpoint"),
    }
)


class _Slot:
    __slots__ = ("rest",)

    def __init__(self) -> None:
        self.rest: Rest | None = None


class DetachedResponses:
    """Outermost middleware: runs what a response handed to ``detach`` after the app
    (and every middleware inside this one) has returned."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # An object, not a value in the scope: a middleware that copies the scope still
        # hands the same slot down.
        slot = _Slot()
        scope[_SLOT] = slot
        try:
            await self.app(scope, receive, send)
        except BaseException:
            if slot.rest is not None:
                slot.rest.abandon()
            raise
        rest = slot.rest
        if rest is not None:
            slot.rest = None
            # The app is done with this request: its session, exit stacks and the like
            # would otherwise live as long as the stream (a few KiB each).
            for key in [key for key in scope if key not in _KEPT]:
                del scope[key]
            await rest.run(receive, send)


def detach(scope: Scope, rest: Rest) -> bool:
    """Have ``rest.run(receive, send)`` run after the middleware returns; False when the app
    has no ``DetachedResponses`` around it (the caller then runs it where it is)."""
    slot = scope.get(_SLOT)
    if not isinstance(slot, _Slot) or slot.rest is not None:
        return False
    slot.rest = rest
    return True
