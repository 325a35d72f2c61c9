"""Building the starlette-admin app: vibetuner's sessions, CSRF, CSP and look.

What starlette-admin does is kept (views, lists, search, forms, actions, export); the
glue here makes it one part of the app:

* **Who gets in** is decided by the gate in front (``AdminGate``); the auth provider
  only names the admin and signs out through vibetuner's sessions.
* **CSRF**: the app's middleware checks every unsafe request, so starlette-admin's
  second double-submit cookie is taken out of its ``middlewares``; its forms carry the
  app's token (``csrf_input``) and ``vibetuner-admin.js`` sends it with every script
  request.
* **CSP**: the app's policy stays. Script and style tags written in starlette-admin's
  templates get this response's nonce when the templates are compiled (data rendered
  into a page never does), its two inline event handlers are allowed by hash, and
  only ``style-src`` gains ``'unsafe-inline'`` (its templates use style attributes).
* **Look**: Tabler's palette set to the frontend kit's (zinc, its brand colour), the
  light/dark choice of the ``vt_theme`` cookie, the app's own font (Inter, served by
  the app) instead of a web font from a CDN, and its words ("Sign out", "Back to the
  app", a dash for an empty value).
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, pass_context
from jinja2.ext import Extension
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from starlette_admin import CustomView, DefaultTheme, TablerSettings
from starlette_admin.auth import AdminUser, BaseAuthProvider
from starlette_admin.contrib.beanie import Admin
from starlette_admin.routing import route
from starlette_admin.security.csrf import CSRFMiddleware
from starlette_admin.views import BaseView

from vibetuner.admin.debug import debug_report
from vibetuner.admin.home import HomeView
from vibetuner.admin.paths import ADMIN_PATH, SCOPE_ADMIN
from vibetuner.admin.views import AuditedModelView, framework_views
from vibetuner.auth.session_auth import logout
from vibetuner.blobs.routes import find_blob, serve_blob
from vibetuner.context import AppContext
from vibetuner.i18n import gettext
from vibetuner.services.keys import derive_key
from vibetuner.web.context import STATE_KEY
from vibetuner.web.ui import theme_of

if TYPE_CHECKING:
    from vibetuner.admin.feature import AdminFeature
from vibetuner.web.csrf import csrf_field, csrf_token
from vibetuner.web.flash import flash
from vibetuner.web.security_headers import csp_nonce, relax_csp

TEMPLATES = Path(__file__).parent / "templates"
# Inline event handlers in starlette-admin's templates (without template expressions).
_HANDLER = re.compile(r"""\son[a-z]+="([^"{}]*)\"""")
_TAG = re.compile(r"<(script|style)(?=[\s>])(?![^>]*\bnonce=)", re.IGNORECASE)
# Where each admin app keeps the CSP hashes of those handlers (found when it is built).
HANDLER_HASHES = "vt_handler_hashes"


class ScriptNonces(Extension):
    """Give every ``<script>``/``<style>`` tag written in a template this response's nonce.

    It works on template source, before compiling: tags that come from data rendered
    into the page are escaped text by then, and never get a nonce.
    """

    def preprocess(self, source: str, name: str | None, filename: str | None = None) -> str:
        return _TAG.sub(r'<\1 nonce="{{ vt_csp_nonce() }}"', source)


@pass_context
def _nonce(context: Any) -> str:
    request = context.get("request")
    return csp_nonce(request) if hasattr(request, "scope") else ""


def handler_hashes(env: Environment) -> list[str]:
    """``'sha256-...'`` sources for the inline event handlers in the admin's templates."""
    assert env.loader is not None
    found: set[str] = set()
    for name in env.list_templates(extensions=["html"]):
        source, _, _ = env.loader.get_source(env, name)
        found.update(_HANDLER.findall(source))
    return sorted(
        f"'sha256-{base64.b64encode(hashlib.sha256(h.encode()).digest()).decode()}'" for h in found
    )


def admin_csp(request: Request, admin_app: Any) -> None:
    """Relax this admin response's CSP just as far as starlette-admin's pages need."""
    relax_csp(request, style_src="'unsafe-inline'")
    state = getattr(admin_app, "state", None)
    hashes: list[str] = getattr(state, HANDLER_HASHES, [])
    if hashes:
        relax_csp(request, script_src=["'unsafe-hashes'", *hashes])


class GateAuth(BaseAuthProvider):
    """Names the admin the gate let in, and signs out through vibetuner's sessions."""

    async def authenticate(self, request: Request) -> AdminUser | None:
        user = request.scope.get(SCOPE_ADMIN)
        if user is None:
            return None
        return AdminUser(username=user.name or user.email)

    def get_routes(self, templates: Any) -> list[Route]:
        return [Route("/logout", self.logout, methods=["POST"], name="logout")]

    async def logout(self, request: Request) -> Response:

        await logout(request)
        flash(request, gettext("You are signed out."))
        return RedirectResponse("/", status_code=303)


class VibetunerTheme(DefaultTheme):
    """Tabler with the frontend kit's palette, in the light or dark mode the visitor chose."""

    def __init__(self) -> None:
        super().__init__(TablerSettings(base="zinc", primary="indigo", radius=1))

    def html_attrs(self, request: Request) -> dict[str, str]:

        attrs = super().html_attrs(request)
        chosen = theme_of(request)
        # "system": the admin script picks light or dark before the page paints.
        attrs["data-bs-theme"] = "light" if chosen == "system" else chosen
        attrs["data-vt-theme"] = chosen
        return attrs


def _is_admin_csrf(factory: object) -> bool:
    return factory is CSRFMiddleware


class VibetunerAdmin(Admin):
    """starlette-admin's ``Admin`` with the app's CSRF check instead of its own."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        # starlette-admin always adds its own double-submit CSRF middleware to the
        # admin's ``middlewares`` (read when it is mounted). The app's CSRF middleware
        # already checks every unsafe request under /admin, and a second cookie-and-token
        # pair would make every admin form fail one check or the other.
        self.middlewares = [m for m in self.middlewares if not _is_admin_csrf(m.cls)]

    @route("/_vt/blobs/{blob_id}/content", methods=["GET", "HEAD"], name="vt-blob-content")
    async def blob_content(self, request: Request) -> Response:
        """A stored file's bytes for the admin (previews and downloads)."""
        from starlette.exceptions import HTTPException

        from vibetuner.blobs.store import BlobStore

        context: AppContext = getattr(request.app.state, STATE_KEY)
        blob = await find_blob(str(request.path_params["blob_id"]))
        store = context.find(BlobStore)
        if blob is None or store is None:
            raise HTTPException(404, "No such file.")
        return await serve_blob(request, store, blob)


class DebugView(CustomView):
    """Development only: settings (secrets masked), routes, models and indexes, database."""

    def __init__(self) -> None:
        super().__init__(menu_label="Debug", icon="fa-solid fa-stethoscope", path="/debug")

    # Named: by default the route takes the method's name, "index", which is also the
    # admin home's, and the brand link (url_for("admin:index")) would lead here.
    @route("", name="vt-debug")
    async def index(self, request: Request) -> Response:

        assert self.templates is not None
        context: AppContext = getattr(request.app.state, STATE_KEY)
        report = await debug_report(context)
        return self.templates.TemplateResponse(
            request,
            "vibetuner_admin/debug.html",
            {"title": "Debug", "report": report},
        )


def build_admin_app(context: AppContext, feature: AdminFeature) -> Starlette:
    """The starlette-admin app for ``context``'s models and ``feature``'s views."""
    settings = context.settings
    title = feature.title or f"{settings.app_name} admin"
    home = HomeView(title)
    admin = VibetunerAdmin(
        title=title,
        index_view=home,
        base_url=ADMIN_PATH,
        route_name="admin",
        templates_dir=str(TEMPLATES),
        theme=VibetunerTheme(),
        auth_provider=GateAuth(),
        secret_key=derive_key(settings, "admin cookies").hex(),
    )
    views: list[Any] = [
        *framework_views(jobs=context.has_feature("jobs")),
        *(AuditedModelView(model) for model in feature.app_models),
        *feature.resolved_views(),
        # Every feature's own views (Feature.admin_views), in the order of the features.
        *(view for other in context.features for view in other.admin_views()),
    ]
    if settings.environment == "development":
        views.append(DebugView())
    for view in views:
        # A class is made here (as add_view would) so the home page sees the instance.
        view = view if isinstance(view, BaseView) else view()
        admin.add_view(view)
        home.views.append(view)
    admin.mount_to(Starlette())
    app = admin.app
    setattr(app.state, STATE_KEY, context)

    env = admin.templates.env
    env.add_extension(ScriptNonces)
    env.globals["vt_csp_nonce"] = _nonce
    env.globals["csrf_input"] = csrf_field
    env.globals["vt_csrf_token"] = csrf_token
    env.globals["vt_static"] = lambda request, name: context.require_static().url(name)
    env.globals["favicon_url"] = lambda request: context.require_static().url(
        "vibetuner/favicon.svg"
    )
    setattr(app.state, HANDLER_HASHES, handler_hashes(env))
    return app
