"""``AdminFeature``: mounts the admin at ``/admin`` behind a gate that answers 404 to non-admins."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from vibetuner.admin.paths import ADMIN_PATH, SCOPE_ADMIN
from vibetuner.auth.impersonation import is_viewing_as
from vibetuner.auth.sessions import resolve_session
from vibetuner.features import Feature
from vibetuner.models.audit import AuditLog
from vibetuner.request_id import set_user_id
from vibetuner.web.context import get_context
from vibetuner.web.errors import http_error_page
from vibetuner.web.identity import SESSION_TOKEN_KEY

if TYPE_CHECKING:
    from beanie import Document


# An app's view: a ModelView subclass or instance, or "module:attribute" naming one.
AdminView = Any


class AdminFeature(Feature):
    """The back office at ``/admin``, for users with the ``admin`` role only.

    ``models`` registers app documents with a default view, one line each
    (``AdminFeature(models=[Note])``); ``views`` takes starlette-admin views of the
    app's own (``ModelView`` subclasses built on :class:`vibetuner.admin.views.AuditedModelView`
    to keep the audit trail), or ``"module:attribute"`` strings naming them, which are
    imported only when the admin is first opened.
    """

    name = "admin"
    requires = ("auth",)

    def __init__(
        self,
        *,
        models: Sequence[type[Document]] = (),
        views: Sequence[AdminView] = (),
        title: str | None = None,
    ) -> None:
        self.app_models = list(models)
        self.app_views = list(views)
        self.title = title

    def models(self) -> Sequence[type[Document]]:
        return [AuditLog]

    def routes(self) -> Sequence[BaseRoute]:
        gate = AdminGate(self)
        return [
            # An ASGI endpoint, so the route takes every method (TRACE, PROPFIND, ...):
            # a 405 with an Allow header would tell that something is there.
            Route(ADMIN_PATH, AdminRoot(gate), name="admin_home", include_in_schema=False),
            Mount(ADMIN_PATH, app=gate, name="admin"),
        ]

    def resolved_views(self) -> list[Any]:
        """The app's views, with ``"module:attribute"`` strings imported."""
        found = []
        for view in self.app_views:
            if isinstance(view, str):
                module_name, _, attribute = view.partition(":")
                view = getattr(importlib.import_module(module_name), attribute)
            found.append(view)
        return found


class AdminRoot:
    """``/admin`` itself, for any method: the gate's :meth:`AdminGate.root`."""

    def __init__(self, gate: AdminGate) -> None:
        self.gate = gate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.gate.root(scope, receive, send)


class AdminGate:
    """The admin app behind a check: admins pass, everyone else gets the app's 404.

    The 404 is the very answer a path that does not exist gets, so the admin's
    existence is not revealed. A browser in "view as user" never passes. The
    starlette-admin app is built on the first request that passes.
    """

    def __init__(self, feature: AdminFeature) -> None:
        self.feature = feature
        self._app: ASGIApp | None = None
        self._lock = asyncio.Lock()

    @property
    def routes(self) -> list[BaseRoute]:
        # Mount.url_path_for looks here; only admin pages ask, after the app is built.
        return list(getattr(self._app, "routes", []))

    async def _admin_user(self, request: Request) -> Any:
        """The signed-in admin, or None; leaves no trace on the answer either way.

        The session is checked without ``current_user``, which would clear a dead
        session's cookie or put the user in the page's menu, and read without
        ``request.session``, which would add ``Vary: Cookie``: a 404 here must be the
        404 of a path that does not exist, headers included.
        """

        session = request.scope.get("session")
        if not isinstance(session, dict) or is_viewing_as(request):
            return None
        token = session.get(SESSION_TOKEN_KEY)
        if not isinstance(token, str) or not token:
            return None
        active = await resolve_session(token, get_context(request).settings)
        if active is None or not active.user.is_admin:
            return None
        set_user_id(active.user.id)  # for this request's log lines
        return active.user

    async def _not_found(self, scope: Scope, receive: Receive, send: Send) -> None:

        response = await http_error_page(Request(scope, receive), HTTPException(404))
        await response(scope, receive, send)

    async def root(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``/admin`` without the slash: admins go on to ``/admin/``, others get 404."""
        request = Request(scope, receive)
        if request.method not in ("GET", "HEAD") or await self._admin_user(request) is None:
            await self._not_found(scope, receive, send)
            return
        await RedirectResponse(ADMIN_PATH + "/", status_code=307)(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1000})
            return
        request = Request(scope, receive)
        user = await self._admin_user(request)
        if user is None:
            await self._not_found(scope, receive, send)
            return
        scope[SCOPE_ADMIN] = user
        app = self._app or await self._build(request)
        # Lazy: starlette-admin (heavy) loads on the first admin request, not at startup.
        from vibetuner.admin.site import admin_csp

        admin_csp(request, app)
        await app(scope, receive, send)

    async def _build(self, request: Request) -> ASGIApp:
        async with self._lock:
            if self._app is None:
                # Lazy: starlette-admin (heavy) loads on the first admin request.
                from vibetuner.admin.site import build_admin_app

                self._app = build_admin_app(get_context(request), self.feature)
        return self._app
