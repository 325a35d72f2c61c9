"""What every page of the layout needs: template helpers and the theme switch.

Template globals (each reads ``request`` from the page's context):

* ``static_url(name)`` / ``static_exists(name)`` -- content-hashed static file URLs;
* ``path_for(name, **params)`` / ``has_route(name)`` -- route paths by name;
* ``sign_in()`` -- the route names of the app's sign-in pages (a ``SignIn``), or None
  when the app has no sign-in feature;
* ``current_user()`` -- the signed-in user when the route looked it up (``CurrentUser``
  or ``RequireUser``), else None; ``signed_in_hint()`` -- the browser has a session;
* ``pop_flashes()`` -- the flash messages waiting for this page;
* ``theme`` -- ``"light"``, ``"dark"`` or ``"system"``, from the ``vt_theme`` cookie;
* ``locale`` and ``locales`` -- the page's language and ``(code, name)`` of those offered.
"""

from __future__ import annotations

from typing import Annotated, Any

import jinja2
from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from starlette.routing import NoMatchFound

from vibetuner.i18n import current_locale
from vibetuner.web.context import get_context
from vibetuner.web.flash import pop_flashes
from vibetuner.web.htmx import is_htmx
from vibetuner.web.identity import SCOPE_SESSION, signed_in_hint, signed_in_user
from vibetuner.web.locale import LOCALE_COOKIE, SESSION_LOCALE_KEY
from vibetuner.web.redirects import safe_next
from vibetuner.web.route_paths import RoutePaths, route_paths

THEME_COOKIE = "vt_theme"
THEMES = ("light", "dark", "system")
ONE_YEAR = 365 * 24 * 3600

router = APIRouter(prefix="/ui", tags=["ui"], include_in_schema=False)


def theme_of(request: Request) -> str:
    """The colour theme this browser chose (``"system"`` unless it chose one)."""
    value = request.cookies.get(THEME_COOKIE, "system")
    return value if value in THEMES else "system"


@router.post("/theme", name="set_theme")
async def set_theme(
    request: Request,
    theme: Annotated[str, Form(max_length=10)],
    next: Annotated[str, Form(max_length=2048)] = "/",
) -> Response:
    """Remember the colour theme in a cookie; back to ``next`` (htmx: nothing to swap)."""
    if theme not in THEMES:
        return Response("Unknown theme.", status_code=422, media_type="text/plain")
    response: Response
    if is_htmx(request):
        response = Response(status_code=204)
    else:
        response = RedirectResponse(safe_next(next), status_code=303)
    if theme == "system":
        response.delete_cookie(THEME_COOKIE, path="/")
    else:
        response.set_cookie(
            THEME_COOKIE,
            theme,
            max_age=ONE_YEAR,
            path="/",
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )
    return response


@router.post("/locale", name="set_locale")
async def set_locale(
    request: Request,
    locale: Annotated[str, Form(max_length=20)],
    next: Annotated[str, Form(max_length=2048)] = "/",
) -> Response:
    """Answer in ``locale`` from now on: a cookie, and the signed-in user's preference."""

    chosen = get_context(request).i18n.pick(locale)
    if chosen is None:
        return Response("Unsupported language.", status_code=422, media_type="text/plain")
    user = await signed_in_user(request)
    if user is not None:
        await user.set({"locale": chosen})
        request.session[SESSION_LOCALE_KEY] = chosen
    response: Response
    if is_htmx(request):
        response = Response(status_code=204, headers={"HX-Refresh": "true"})
    else:
        response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(
        LOCALE_COOKIE,
        chosen,
        max_age=ONE_YEAR,
        path="/",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return response


def _request(context: Any) -> Request:
    request = context.get("request")
    if request is None:
        raise RuntimeError("this template helper needs `request` in the template context")
    return request  # type: ignore[no-any-return]


@jinja2.pass_context
def _static_url(context: Any, name: str) -> str:

    request = _request(context)
    return get_context(request).require_static().url(name)


@jinja2.pass_context
def _static_exists(context: Any, name: str) -> bool:

    static = get_context(_request(context)).static
    return static is not None and static.asset(name) is not None


# The app's route paths, kept in the request's scope: a page asks for dozens of links.
SCOPE_PATHS = "vibetuner.route_paths"


def _paths(context: Any) -> RoutePaths:
    scope = _request(context).scope
    paths: RoutePaths | None = scope.get(SCOPE_PATHS)
    if paths is None:
        paths = scope[SCOPE_PATHS] = route_paths(scope["app"])
    return paths


@jinja2.pass_context
def _path_for(context: Any, name: str, /, **params: Any) -> str:
    return _paths(context).text(name, **params)


@jinja2.pass_context
def _has_route(context: Any, name: str) -> bool:
    try:
        _paths(context).text(name)
    except NoMatchFound:
        return False
    return True


@jinja2.pass_context
def _sign_in(context: Any) -> Any:
    from vibetuner.features import SignIn
    from vibetuner.web.context import get_context

    return get_context(_request(context)).find(SignIn)


@jinja2.pass_context
def _current_user(context: Any) -> Any:
    if "user" in context and context["user"] is not None:
        return context["user"]
    active = _request(context).scope.get(SCOPE_SESSION)
    return getattr(active, "user", None)


@jinja2.pass_context
def _signed_in_hint(context: Any) -> bool:
    return signed_in_hint(_request(context))


@jinja2.pass_context
def _pop_flashes(context: Any) -> list[Any]:
    return pop_flashes(_request(context))


def template_globals() -> dict[str, Any]:
    """The helpers above, by the names templates use."""
    return {
        "static_url": _static_url,
        "static_exists": _static_exists,
        "path_for": _path_for,
        "has_route": _has_route,
        "sign_in": _sign_in,
        "current_user": _current_user,
        "signed_in_hint": _signed_in_hint,
        "pop_flashes": _pop_flashes,
    }


def page_values(request: Request) -> dict[str, Any]:
    """Context processor: values every page gets."""

    return {
        "theme": theme_of(request),
        "locale": current_locale(),
        "locales": get_context(request).i18n.names(),
    }
