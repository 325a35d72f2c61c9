"""``create_app``: a FastAPI app wired to vibetuner's database, sessions and routes."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from beanie import Document
from fastapi import APIRouter, FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import Response
from starlette.exceptions import HTTPException
from starlette.middleware.sessions import SessionMiddleware
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vibetuner.config import Settings, get_settings
from vibetuner.errors import VibetunerError
from vibetuner.web.body_limits import ClientDisconnect, client_disconnected
from vibetuner.web.csrf import CSRFMiddleware
from vibetuner.web.health import router as health_router
from vibetuner.web.lifespan import AppLifespan, vibetuner_lifespan
from vibetuner.web.routers import add_router
from vibetuner.web.security_headers import SecurityHeadersMiddleware
from vibetuner.web.sessions import session_middleware_options


def create_app(
    *,
    models: Sequence[type[Document]] = (),
    routers: Sequence[APIRouter] = (),
    lifespan: AppLifespan | None = None,
    settings: Settings | None = None,
    **fastapi_kwargs: Any,
) -> FastAPI:
    """Build the app: core + ``models`` registered at startup, sessions, ``/health``.

    ``lifespan`` is the app's own lifespan; it runs inside the framework's, after the
    database is ready. Extra keyword arguments go to ``FastAPI``.
    """
    active = settings or get_settings()
    fastapi_kwargs.setdefault("title", active.app_name)
    app = FastAPI(
        lifespan=vibetuner_lifespan(models, settings=active, app_lifespan=lifespan),
        **fastapi_kwargs,
    )
    app.state.settings = active
    # --- request security: CSRF inside the session, headers around both ---
    session_options = session_middleware_options(active)
    app.add_middleware(
        CSRFMiddleware,
        base_url=active.base_url,
        session_cookie=session_options["session_cookie"],
        trusted_origins=active.csrf_trusted_origins,
    )
    app.add_middleware(SessionMiddleware, **session_options)
    if active.security_headers:
        app.add_middleware(SecurityHeadersMiddleware, settings=active)
    app.add_exception_handler(ClientDisconnect, client_disconnected)
    # --- end request security ---
    app.add_middleware(StartupErrorMiddleware)
    app.add_exception_handler(405, method_not_allowed)
    add_router(app, health_router)
    for router in routers:
        add_router(app, router)
    return app


KNOWN_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


async def method_not_allowed(request: Request, exc: Exception) -> Response:
    """405 whose ``Allow`` names every method of the path.

    Starlette answers with the methods of the first route whose path matched; a path
    served by several routes (``GET`` and ``DELETE /blobs/{id}``) needs all of them.
    """
    # Ask every route the way the router does (``matches``), once per method: included
    # routers are routes too, and their own routes are not in ``app.router.routes``.
    allowed = [
        method
        for method in KNOWN_METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL
            for route in request.app.router.routes
        )
    ]
    detail = exc.detail if isinstance(exc, HTTPException) else "Method Not Allowed"
    headers = {"Allow": ", ".join(allowed)} if allowed else None
    return await http_exception_handler(request, HTTPException(405, detail, headers=headers))


class StartupErrorMiddleware:
    """Report a vibetuner error during startup as one clear line, not a traceback.

    Starlette sends the formatted traceback as the ``lifespan.startup.failed`` message,
    which servers print; for our own errors (database unreachable, bad settings) the
    message alone says what to fix. The server still exits non-zero.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def send_plain(message: Message) -> None:
            if message["type"] == "lifespan.startup.failed":
                error = _vibetuner_error(sys.exc_info()[1])
                if error is not None:
                    message = {**message, "message": f"{type(error).__name__}: {error}"}
            await send(message)

        await self.app(scope, receive, send_plain)


def _vibetuner_error(exc: BaseException | None) -> VibetunerError | None:
    while exc is not None:
        if isinstance(exc, VibetunerError):
            return exc
        if isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
            exc = exc.exceptions[0]
        else:
            exc = exc.__cause__ or exc.__context__
    return None
