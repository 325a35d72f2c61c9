"""Starlette beyond its public API: constant-time dispatch for routes without parameters.

Why: Starlette's router tries each route in order, so a request for the fortieth route
first fails thirty-nine pattern matches, on every request. ``StaticRouteIndex`` sits in
front of the router and sends a request whose path belongs to a route without
parameters straight to that route, by dictionary look-up. Everything else -- paths with
parameters, mounts, 405s, trailing-slash redirects, websockets -- goes through the router
as before. Starlette has no public hook in front of its dispatch loop, so the index
replaces ``Router.middleware_stack`` (the attribute the router calls for each request).

The order of routes still decides: a path is indexed only when no earlier route with
parameters (or a mount) could also match it, and the fast path is taken only when an
indexed route matches fully (path and method); otherwise the router runs as usual.

Relied on (checked by ``tests/core/test_compat_starlette.py``): ``Router.middleware_stack``
is called for every request and equals ``Router.app`` when the router has no middleware;
``Route.param_convertors``, ``Route.path_regex``, ``matches()`` and ``handle()``; and the
router sets ``scope["router"]`` and ``scope["route"]``.
"""

from __future__ import annotations

from starlette.routing import Match, Mount, Route, Router, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send


class StaticRouteIndex:
    """An ASGI app in front of ``router``: a dict from static path to its routes."""

    def __init__(self, router: Router, fallback: ASGIApp) -> None:
        self.router = router
        self.fallback = fallback
        self._indexed_count = -1
        self._by_path: dict[str, list[Route]] = {}

    def _rebuild(self) -> None:
        by_path: dict[str, list[Route]] = {}
        blocked: set[str] = set()
        dynamic: list[Route | WebSocketRoute | Mount] = []
        for route in self.router.routes:
            if isinstance(route, Route) and not route.param_convertors:
                path = route.path
                if path in blocked:
                    continue
                if any(earlier.path_regex.match(path) for earlier in dynamic):
                    # An earlier route could take this path: leave it to the router.
                    blocked.add(path)
                    by_path.pop(path, None)
                    continue
                by_path.setdefault(path, []).append(route)
            elif isinstance(route, (Route, WebSocketRoute, Mount)):
                dynamic.append(route)
            else:
                # A kind of route whose paths cannot be known ahead (Host, custom):
                # nothing after it is indexed.
                break
        self._by_path = by_path
        self._indexed_count = len(self.router.routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            if self._indexed_count != len(self.router.routes):
                self._rebuild()  # routes were added since the last request
            candidates = self._by_path.get(scope["path"])
            if candidates is not None:
                for route in candidates:
                    match, child_scope = route.matches(scope)
                    if match is Match.FULL:
                        scope.setdefault("router", self.router)
                        scope["route"] = route
                        scope.update(child_scope)
                        await route.handle(scope, receive, send)
                        return
        await self.fallback(scope, receive, send)


def index_static_routes(router: Router) -> None:
    """Put a ``StaticRouteIndex`` in front of ``router`` (unless it has router middleware)."""
    stack = router.middleware_stack
    if isinstance(stack, StaticRouteIndex):
        return
    if stack != router.app:
        return  # router-level middleware would be skipped by the fast path
    router.middleware_stack = StaticRouteIndex(router, stack)
