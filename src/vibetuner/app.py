"""``create_app``: a FastAPI app from vibetuner's core and a list of features."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from beanie import Document
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException
from starlette.middleware.sessions import SessionMiddleware
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vibetuner import observability
from vibetuner._compat.fastapi import add_router
from vibetuner._compat.starlette import index_static_routes
from vibetuner.auth.feature import AuthFeature
from vibetuner.auth.session_auth import session_middleware_options
from vibetuner.blobs.routes import BlobsFeature
from vibetuner.config import Settings, downgrades, get_settings
from vibetuner.context import create_context
from vibetuner.errors import VibetunerError
from vibetuner.features import Feature
from vibetuner.ratelimit.feature import RateLimitFeature
from vibetuner.web.api_docs import add_offline_docs
from vibetuner.web.bearer import BearerCookieMiddleware
from vibetuner.web.body_limits import ClientDisconnect, client_disconnected
from vibetuner.web.context import STATE_KEY, RouterLinks
from vibetuner.web.csrf import CSRFMiddleware
from vibetuner.web.detached import DetachedResponses
from vibetuner.web.errors import (
    ErrorTable,
    http_error_page,
    server_error_page,
    vibetuner_error_handler,
)
from vibetuner.web.health import router as health_router
from vibetuner.web.lifespan import AppLifespan, vibetuner_lifespan
from vibetuner.web.locale import LocaleMiddleware
from vibetuner.web.page_security import template_globals
from vibetuner.web.request_body import RequestBodyMiddleware
from vibetuner.web.request_id import RequestIdMiddleware
from vibetuner.web.security_headers import SecurityHeadersMiddleware
from vibetuner.web.static_assets import STATIC_PATH, StaticAssets
from vibetuner.web.ui import page_values
from vibetuner.web.ui import router as ui_router
from vibetuner.web.ui import template_globals as ui_globals

logger = logging.getLogger("vibetuner.app")

if TYPE_CHECKING:
    from vibetuner.services.email import EmailBackend


def default_features() -> list[Feature]:
    """The features an app gets when it names none: rate limits, sign-in and blob storage."""

    return [RateLimitFeature(), AuthFeature(), BlobsFeature()]


def create_app(
    *,
    features: Sequence[Feature] | None = None,
    models: Sequence[type[Document]] = (),
    routers: Sequence[APIRouter] = (),
    lifespan: AppLifespan | None = None,
    settings: Settings | None = None,
    template_dirs: Sequence[str | os.PathLike[str]] = (),
    static_dirs: Sequence[str | os.PathLike[str]] = (),
    locale_dirs: Sequence[str | os.PathLike[str]] = (),
    email_backend: EmailBackend | None = None,
    **fastapi_kwargs: Any,
) -> FastAPI:
    """Build the app: the core (database, sessions, ``/health``) plus ``features``.

    ``features`` defaults to :func:`default_features`; pass ``[]`` for the core alone.
    ``models`` and ``routers`` are the app's own; its ``template_dirs`` are searched
    before the features' and vibetuner's; its ``static_dirs`` are served at ``/static``
    (vibetuner's own files at ``/static/vibetuner/``); its ``locale_dirs`` hold its
    translation catalogs (domain ``messages``). ``email_backend`` replaces the one
    ``EMAIL_BACKEND`` names. ``lifespan`` is the app's own lifespan; it runs inside the
    framework's, after the database is ready. Extra keyword arguments go to ``FastAPI``.
    """
    active = settings or get_settings()
    chosen = list(default_features() if features is None else features)
    # Traces, metrics and error reports, when OTEL_*, METRICS_* or SENTRY_DSN ask for them.
    chosen += observability.features(active, chosen)
    context = create_context(
        features=chosen,
        models=models,
        settings=active,
        template_dirs=template_dirs,
        locale_dirs=locale_dirs,
        email_backend=email_backend,
    )
    templates = context.templates
    templates.context_processors.append(lambda request: {"app_name": active.app_name})
    templates.context_processors.append(page_values)
    # csrf_field(), csrf_meta(), csrf_token(), csp_nonce(), static_url(), path_for() ...
    templates.env.globals.update(template_globals())
    templates.env.globals.update(ui_globals())
    for feature in chosen:
        templates.env.globals.update(feature.template_globals())
        templates.env.filters.update(feature.template_filters())
    static = StaticAssets(static_dirs, reload=active.environment == "development")
    for feature in context.features:
        for directory in feature.static_dirs():
            static.add_dir(directory)
    context.static = static
    errors = ErrorTable()
    for feature in context.features:
        errors.add(feature.errors(), owner=feature.name)
    context.provide(errors)

    fastapi_kwargs.setdefault("title", active.app_name)
    # /docs and /redoc are served from local assets (they work offline), not FastAPI's CDN;
    # by default not in production (API_DOCS), unless the app names them itself.
    docs_on = active.api_docs_enabled
    docs_url = fastapi_kwargs.pop("docs_url", "/docs" if docs_on else None)
    redoc_url = fastapi_kwargs.pop("redoc_url", "/redoc" if docs_on else None)
    if not docs_on and docs_url is None and redoc_url is None:
        fastapi_kwargs.setdefault("openapi_url", None)
    warn_accepted_downgrades(active)
    if observability.native_telemetry_off(active):
        # Requests are traced and measured by vibetuner's observability feature; FastAPI's
        # own telemetry (in versions that have it) would look at every request to step aside.
        fastapi_kwargs.setdefault("telemetry", {"tracing": False, "metrics": False, "logs": False})
    app = FastAPI(
        lifespan=vibetuner_lifespan(context, lifespan),
        docs_url=None,
        redoc_url=None,
        **fastapi_kwargs,
    )
    setattr(app.state, STATE_KEY, context)
    context.links = RouterLinks(app.router, active.base_url)

    # add_middleware puts each one outside the ones before. Innermost first: features'
    # middleware (inside the CSRF check: a refused request never reaches them) and the
    # CSRF check run inside the session (they read it); the security
    # headers go around both, so refusals get them too; startup errors are outermost.
    for feature in reversed(chosen):
        for entry in reversed(feature.middleware()):
            app.add_middleware(entry.cls, *entry.args, **entry.kwargs)
    session_options = session_middleware_options(active)
    app.add_middleware(
        CSRFMiddleware,
        base_url=active.base_url,
        session_cookie=session_options["session_cookie"],
        trusted_origins=active.csrf_trusted_origins,
    )
    # Inside the session (it reads the saved language), around everything that renders.
    app.add_middleware(LocaleMiddleware, catalogs=context.i18n)
    app.add_middleware(SessionMiddleware, **session_options)
    # Outside the session: a request with an API token is read without its cookies.
    app.add_middleware(BearerCookieMiddleware)
    # Outside every reader of the body; inside the headers, so its 408 gets them too.
    app.add_middleware(RequestBodyMiddleware, timeout=active.request_body_timeout)
    if active.security_headers:
        app.add_middleware(SecurityHeadersMiddleware, settings=active)
    app.add_exception_handler(ClientDisconnect, client_disconnected)
    app.add_middleware(StartupErrorMiddleware)
    # Outermost: every other middleware, the error pages and the logs see the id.
    app.add_middleware(RequestIdMiddleware, trusted_proxies=active.trusted_proxies)
    # Around all of them: a long-lived response (an event stream) goes on here, after
    # the middleware has returned, instead of holding every frame of it open.
    app.add_middleware(DetachedResponses)

    app.add_exception_handler(405, method_not_allowed)
    app.add_exception_handler(HTTPException, http_error_page)
    app.add_exception_handler(Exception, server_error_page)
    app.add_exception_handler(VibetunerError, vibetuner_error_handler)
    for feature in chosen:
        for key, handler in feature.exception_handlers().items():
            app.add_exception_handler(key, handler)

    add_router(app, health_router)
    add_router(app, ui_router)
    app.mount(STATIC_PATH, static, name="static")
    add_offline_docs(app, docs_url, redoc_url)
    for feature in chosen:
        for router in feature.routers():
            add_router(app, router)
        app.router.routes.extend(feature.routes())
    for router in routers:
        add_router(app, router)
    observability.instrument_app(app)
    index_static_routes(app.router)
    return app


def warn_accepted_downgrades(settings: Settings) -> None:
    """Log each security downgrade that ``ALLOW_INSECURE_PRODUCTION`` accepts, loudly."""
    if not settings.is_production:
        return
    for name, sentence in downgrades(settings).items():
        if name in settings.allow_insecure_production:
            logger.warning("ALLOW_INSECURE_PRODUCTION=%s accepts: %s", name, sentence)


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
    return await http_error_page(request, HTTPException(405, detail, headers=headers))


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
