"""``add_router``: a router's routes become the app's own routes, not a nested branch.

FastAPI keeps an included router as a branch of its own and, on every request, walks its
routes through that branch; the static-route index (``web/route_index.py``) cannot see
into it either, so every path after it is matched route by route. A router's prefix,
tags and dependencies are already part of its routes, so ``add_router`` adds the routes
to the app directly, and points their dependency overrides at the app (so
``app.dependency_overrides`` works in tests, as with ``include_router``). A router that
cannot be taken apart the same way -- with its own lifespan or startup handlers, nested
routers, websocket routes or a body-size limit -- is included as FastAPI does it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import fastapi.routing
import starlette.routing
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute, Mount, Route

# The wrapper APIRoute puts around its handler: FastAPI's own where it has one (it opens
# the exit stacks its dependencies use), Starlette's in older FastAPI.
request_response: Callable[[Any], Any] = getattr(
    fastapi.routing, "request_response", starlette.routing.request_response
)


class FlatRouter(APIRouter):
    """An ``APIRouter``; kept as a name for apps written when only these were added flat.

    ``add_router`` (and ``create_app(routers=...)``) now add every plain ``APIRouter``
    flat, so a plain ``APIRouter`` does the same.
    """


def can_flatten(router: APIRouter) -> bool:
    """True when ``router``'s routes work the same added to the app directly."""
    if router.on_startup or router.on_shutdown or _has_lifespan(router):
        return False
    for route in router.routes:
        if isinstance(route, APIRoute):
            if getattr(route, "max_body_size", None) is not None:
                return False
        elif type(route) not in (Route, Mount):
            return False  # nested routers, websockets, custom route classes
    return True


def _has_lifespan(router: APIRouter) -> bool:
    # A router made without a lifespan keeps Starlette's default one.
    context = getattr(router, "lifespan_context", None)
    return context is not None and type(context).__name__ != "_DefaultLifespan"


def add_router(app: FastAPI, router: APIRouter) -> None:
    """Add ``router``'s routes to ``app`` flat when that works the same, else include it."""
    if not can_flatten(router):
        app.include_router(router)
        return
    routes: list[BaseRoute] = []
    for route in router.routes:
        if isinstance(route, APIRoute):
            # The request handler captured the router's (absent) overrides provider when
            # the route was made: this app gets its own copy, built around the app's.
            # (Routers are module-level; several apps may share one.)
            route = copy.copy(route)
            route.dependency_overrides_provider = app
            route.app = request_response(route.get_route_handler())
        routes.append(route)
    app.router.routes.extend(routes)
