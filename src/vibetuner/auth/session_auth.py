"""Session sign-in in one place: cookie, ``login``/``logout``, ``current_user``, ``require_user``.

The cookie is Starlette's signed session (``SessionMiddleware``, signed with the key
from ``vibetuner.services.keys``). When signed in it holds a random session token; the
server keeps the session itself (``vibetuner.auth.sessions``) and checks it on every
request, so a session ended on the server ends in the browser at once.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request, status

from vibetuner.auth import sessions, two_factor_codes
from vibetuner.auth.current import (
    PENDING_TOKEN_KEY,
    STASHED_TOKEN_KEY,
    current_session,
    current_user,
    session_providers,
    this_session,
)
from vibetuner.auth.impersonation import stop_viewing_as
from vibetuner.config import Settings
from vibetuner.errors import NotSignedIn
from vibetuner.i18n import gettext as _
from vibetuner.models.mixins import utcnow
from vibetuner.models.user import UserModel
from vibetuner.request_id import set_user_id
from vibetuner.services.keys import signing_key
from vibetuner.web.client_address import client_address
from vibetuner.web.context import get_context
from vibetuner.web.flash import flash
from vibetuner.web.identity import SCOPE_SESSION, SESSION_TOKEN_KEY, login_path, wants_html
from vibetuner.web.locale import prefer_user_locale

__all__ = [
    "PENDING_TOKEN_KEY",
    "SESSION_TOKEN_KEY",
    "STASHED_TOKEN_KEY",
    "CurrentUser",
    "RequireUser",
    "current_session",
    "current_user",
    "login",
    "logout",
    "require_user",
    "session_middleware_options",
    "session_providers",
    "this_session",
]


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


async def login(request: Request, user: UserModel, *, second_factor: bool = False) -> None:
    """Sign ``user`` in on this request: a new server-side session, a new cookie.

    The session this browser had is ended and its cookie content dropped, so nothing
    carries over (no session fixation; the CSRF secret changes too). An admin viewing
    the app as a user leaves that view first (recorded in the audit trail).

    When the user has two-factor codes on and ``second_factor`` is False (the sign-in
    proved one factor), the new session is only half signed in: it waits for the code
    (:func:`vibetuner.auth.two_factor.sign_in_redirect` says where to go) and no signed-in
    route accepts it. A browser already fully signed in as the same user (linking a
    provider) keeps its second factor.
    """
    settings = get_context(request).settings
    await _leave_view_as(request)
    before = await current_session(request)
    kept = None
    if before is not None and before.user.id == user.id:
        kept = before.session.second_factor_at
    await _end_sessions_of(request)
    request.session.clear()
    request.scope.pop(SCOPE_SESSION, None)
    factor_at = utcnow() if second_factor else kept
    if factor_at is None:
        if await two_factor_codes.enabled(user.id):
            request.session[PENDING_TOKEN_KEY] = await sessions.start_session(
                user,
                settings,
                user_agent=request.headers.get("user-agent", ""),
                client_address=client_address(request),
                max_age=settings.two_factor_step_seconds,
                pending_second_factor=True,
            )
            return
    token = await sessions.start_session(
        user,
        settings,
        user_agent=request.headers.get("user-agent", ""),
        client_address=client_address(request),
        second_factor_at=factor_at,
    )
    request.session[SESSION_TOKEN_KEY] = token
    request.scope.pop(SCOPE_SESSION, None)
    set_user_id(user.id)  # the sign-in's own log lines and span name the user
    first_time = user.last_login_at is None
    await user.set({UserModel.last_login_at: utcnow()})
    prefer_user_locale(request, user.locale)
    if wants_html(request):
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
    request.scope.pop(SCOPE_SESSION, None)


async def _leave_view_as(request: Request) -> None:
    if "session" in request.scope and STASHED_TOKEN_KEY in request.session:
        await stop_viewing_as(request)


async def _end_sessions_of(request: Request) -> None:
    for key in (SESSION_TOKEN_KEY, STASHED_TOKEN_KEY, PENDING_TOKEN_KEY):
        token = request.session.get(key)
        if isinstance(token, str) and token:
            await sessions.end_session(token)


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
