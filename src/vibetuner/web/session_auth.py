"""Session sign-in in one place: cookie, ``login``/``logout``, ``current_user``, ``require_user``.

The cookie is Starlette's signed session (``SessionMiddleware``, signed with the key
from ``vibetuner.services.keys``). When signed in it holds a random session token; the
server keeps the session itself (``vibetuner.services.sessions``) and checks it on every
request, so a session ended on the server ends in the browser at once.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request, status
from starlette.routing import NoMatchFound

from vibetuner.config import Settings
from vibetuner.errors import NotSignedIn
from vibetuner.models.mixins import utcnow
from vibetuner.models.session import UserSession
from vibetuner.models.user import UserModel
from vibetuner.request_id import set_user_id
from vibetuner.services import sessions
from vibetuner.services.keys import signing_key

SESSION_TOKEN_KEY = "sid"
# While an admin views the app as another user, the admin's own session token waits here.
STASHED_TOKEN_KEY = "vt_admin_sid"
LOGIN_ROUTE = "login_page"
# Where current_user keeps what it found, so a request checks its session once.
_SCOPE_SESSION = "vibetuner.session"


def session_middleware_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for Starlette's ``SessionMiddleware``.

    The cookie is always HttpOnly (Starlette sets it), SameSite=Lax and for path ``/``
    without a Domain; in production it is Secure and named with the ``__Host-`` prefix.
    Its own ``Max-Age`` only bounds how long the browser keeps it: the server-side
    session decides, and never outlives ``SESSION_MAX_AGE`` from sign-in.
    """
    return {
        "secret_key": signing_key(settings),
        "session_cookie": settings.session_cookie_name,
        "max_age": settings.session_max_age,
        "same_site": "lax",
        "https_only": settings.is_production,
    }


async def login(request: Request, user: UserModel) -> None:
    """Sign ``user`` in on this request: a new server-side session, a new cookie.

    The session this browser had is ended and its cookie content dropped, so nothing
    carries over (no session fixation; the CSRF secret changes too). An admin viewing
    the app as a user leaves that view first (recorded in the audit trail).
    """
    from vibetuner.web.client_address import client_address
    from vibetuner.web.context import get_context

    await _leave_view_as(request)
    await _end_sessions_of(request)
    request.session.clear()
    token = await sessions.start_session(
        user,
        get_context(request).settings,
        user_agent=request.headers.get("user-agent", ""),
        client_address=client_address(request),
    )
    request.session[SESSION_TOKEN_KEY] = token
    request.scope.pop(_SCOPE_SESSION, None)
    set_user_id(user.id)  # the sign-in's own log lines and span name the user
    first_time = user.last_login_at is None
    await user.set({UserModel.last_login_at: utcnow()})
    from vibetuner.web.locale import prefer_user_locale

    prefer_user_locale(request, user.locale)
    if wants_html(request):
        from vibetuner.i18n import gettext as _
        from vibetuner.web.flash import flash

        if first_time:
            flash(request, _("Welcome! Your account is ready."))
        elif user.name:
            flash(request, _("Welcome back, %(name)s.", name=user.name))
        else:
            flash(request, _("Welcome back."))


async def logout(request: Request) -> None:
    """End this browser's session on the server and forget it in the cookie.

    While an admin views the app as another user, both sessions end (the end of the
    view is recorded in the audit trail).
    """
    await _leave_view_as(request)
    await _end_sessions_of(request)
    request.session.clear()
    request.scope.pop(_SCOPE_SESSION, None)


async def _leave_view_as(request: Request) -> None:
    if "session" in request.scope and STASHED_TOKEN_KEY in request.session:
        from vibetuner.web.impersonation import stop_viewing_as

        await stop_viewing_as(request)


async def _end_sessions_of(request: Request) -> None:
    for key in (SESSION_TOKEN_KEY, STASHED_TOKEN_KEY):
        token = request.session.get(key)
        if isinstance(token, str) and token:
            await sessions.end_session(token)


async def current_session(request: Request) -> sessions.ActiveSession | None:
    """This request's live session and its user, or None (the cookie is then cleared)."""
    if _SCOPE_SESSION in request.scope:
        found: sessions.ActiveSession | None = request.scope[_SCOPE_SESSION]
        return found
    if "session" not in request.scope:
        return None
    token = request.session.get(SESSION_TOKEN_KEY)
    active = None
    if isinstance(token, str) and token:
        from vibetuner.web.context import get_context

        active = await sessions.resolve_session(token, get_context(request).settings)
        if active is None:
            request.session.clear()  # ended, expired, or its user is gone
        elif active.user.locale:
            from vibetuner.web.locale import prefer_user_locale

            prefer_user_locale(request, active.user.locale)
    request.scope[_SCOPE_SESSION] = active
    if active is not None:
        set_user_id(active.user.id)  # for this request's log lines
    return active


async def current_user(request: Request) -> UserModel | None:
    """The signed-in user, or None.

    The session must exist on the server, be within its absolute and idle lifetimes,
    and belong to an active user who has not signed out everywhere since.
    """
    active = await current_session(request)
    return active.user if active is not None else None


def this_session(request: Request) -> UserSession | None:
    """The session record ``current_user`` found for this request (call it first)."""
    active = request.scope.get(_SCOPE_SESSION)
    return active.session if isinstance(active, sessions.ActiveSession) else None


def session_providers(request: Request) -> list[str] | None:
    """The user's linked provider names as read with this request's session, or None."""
    active = request.scope.get(_SCOPE_SESSION)
    return list(active.providers) if isinstance(active, sessions.ActiveSession) else None


def wants_html(request: Request) -> bool:
    """True for a browser navigation (Accept prefers HTML), False for API clients."""
    accept = request.headers.get("accept", "")
    return "text/html" in accept and "application/json" not in accept


def login_path(request: Request) -> str | None:
    """The sign-in page's path (from the router), or None when the app has no sign-in."""
    try:
        return str(request.app.url_path_for(LOGIN_ROUTE))
    except NoMatchFound:
        return None


async def require_user(
    request: Request, user: Annotated[UserModel | None, Depends(current_user)]
) -> UserModel:
    """The signed-in user; else 401 JSON for API calls or a redirect to the login page."""
    if user is not None:
        return user
    login_page = login_path(request)
    if login_page is not None and wants_html(request) and request.method in ("GET", "HEAD"):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise HTTPException(
            status_code=status.HTTP_303_SEE_OTHER,
            detail="Sign in to continue.",
            headers={"Location": f"{login_page}?next={quote(target, safe='')}"},
        )
    raise NotSignedIn("Not signed in.")


CurrentUser = Annotated[UserModel | None, Depends(current_user)]
RequireUser = Annotated[UserModel, Depends(require_user)]
