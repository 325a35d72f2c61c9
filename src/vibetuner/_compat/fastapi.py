"""FastAPI beyond its public API: a router's routes added to the app flat.

Why: FastAPI (0.16x) keeps an included router as a branch of its own and walks it on
every request, and the static-route index (``_compat/starlette.py``) cannot see into
that branch, so every path after it is matched route by route (about a fifth of a fast
signed-in request). There is no public way to add a router's routes to an app as the
app's own. A router's prefix, tags and dependencies are already part of its routes, so
``add_router`` copies each ``APIRoute`` into the app and rebuilds its ASGI handler with
``fastapi.routing.request_response`` around the app's dependency overrides (what
``APIRoute.__init__`` does), so ``app.dependency_overrides`` works as with
``include_router``. A route class that only wraps the handler (``get_route_handler``,
as vibetuner's ``body_limit`` does) is rebuilt the same way, so its routes go flat too.
Anything that cannot be taken apart the same way (a lifespan or startup handlers of its
own, nested routers, websockets, other custom route classes, FastAPI's own body-size
limit) is included as FastAPI does it.

Relied on (checked by ``tests/core/test_compat_fastapi.py``): ``request_response`` in
``fastapi.routing``, ``APIRoute.app``, ``APIRoute.dependency_overrides_provider`` and
``get_route_handler()``, and a router's ``lifespan_context``.
"""

from __future__ import annotations

import copy

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute, request_response
from starlette.routing import BaseRoute, Mount, Route

# A router made without a lifespan has Starlette's default one: its type tells.
_DEFAULT_LIFESPAN_TYPE = type(APIRouter().lifespan_context)
# What every class body has; anything else a route class defines changes the route.
_CLASS_METADATA = frozenset(
    {"__module__", "__qualname__", "__doc__", "__dict__", "__weakref__", "__annotations__"}
    | {"__firstlineno__", "__static_attributes__", "__orig_bases__", "__parameters__"}
)


def rebuilt_alike(route_class: type) -> bool:
    """True for ``APIRoute`` and for subclasses that change only ``get_route_handler``.

    ``add_router`` rebuilds a copied route's handler from ``get_route_handler()``, so
    such a route (``body_limit``'s, which checks the body's size first) works the same
    added flat.
    """
    for klass in route_class.__mro__:
        if klass is APIRoute:
            return True
        if set(vars(klass)) - _CLASS_METADATA - {"get_route_handler"}:
            return False
    return False


def can_flatten(router: APIRouter) -> bool:
    """True when ``router``'s routes work the same added to the app directly."""
    if router.on_startup or router.on_shutdown:
        return False
    if type(router.lifespan_context) is not _DEFAULT_LIFESPAN_TYPE:
        return False
    for route in router.routes:
        if isinstance(route, APIRoute):
            if not rebuilt_alike(type(route)) or getattr(route, "max_body_size", None) is not None:
                return False
        elif type(route) not in (Route, Mount):
            return False  # nested routers, websockets, custom route classes
    return True


def add_router(app: FastAPI, router: APIRouter) -> None:
    """Add ``router``'s routes to ``app`` flat when that works the same, else include it."""
    if not can_flatten(router):
        app.include_router(router)
        return
    routes: list[BaseRoute] = []
    for route in router.routes:
        if isinstance(route, APIRoute):
            # The handler captured the router's (absent) overrides provider when the
            # route was made: this app gets its own copy, built around the app's.
            # (Routers are module-level; several apps may share one.)
            route = copy.copy(route)
            route.dependency_overrides_provider = app
            route.app = request_response(route.get_route_handler())
        routes.append(route)
    app.router.routes.extend(routes)
