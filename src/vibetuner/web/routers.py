"""``FlatRouter`` and ``add_router``: routers added to the app without a nested branch."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI


class FlatRouter(APIRouter):
    """An ``APIRouter`` whose routes ``create_app`` adds to the app directly.

    FastAPI keeps an included router as a nested branch and, on every request, matches
    each of its routes through that branch, which costs more per route than a route of
    the app itself. A router's prefix, tags and dependencies are already part of its
    routes, so a router without a lifespan or startup handlers works the same when its
    routes are added flat. Use it for your own routers too.
    """


def add_router(app: FastAPI, router: APIRouter) -> None:
    """Add ``router`` to ``app``: flat for a plain ``FlatRouter``, else ``include_router``."""
    if isinstance(router, FlatRouter) and not (router.on_startup or router.on_shutdown):
        app.router.routes.extend(router.routes)
    else:
        app.include_router(router)
