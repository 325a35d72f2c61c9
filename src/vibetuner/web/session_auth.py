"""Session sign-in in one place: cookie, ``login``/``logout``, ``current_user``, ``require_user``.

The session is Starlette's signed cookie (``SessionMiddleware``), signed with the key
from ``vibetuner.services.keys``. It holds the user id and the user's
``session_version`` at sign-in; bumping the version ends every session of the user.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request, status
from starlette.routing import NoMatchFound

from vibetuner.config import Settings
from vibetuner.errors import NotSignedIn
from vibetuner.models.ids import parse_object_id
from vibetuner.models.mixins import utcnow
from vibetuner.models.user import UserModel
from vibetuner.services.keys import signing_key

USER_ID_KEY = "uid"
SESSION_VERSION_KEY = "sv"
LOGIN_ROUTE = "login_page"


def session_middleware_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for Starlette's ``SessionMiddleware``.

    The cookie is always HttpOnly (Starlette sets it) and SameSite=Lax; it is Secure
    everywhere but in development and tests, which run on plain http://127.0.0.1.
    """
    return {
        "secret_key": signing_key(settings),
        "session_cookie": settings.session_cookie,
        "max_age": settings.session_max_age,
        "same_site": "lax",
        "https_only": settings.is_production,
    }


async def login(request: Request, user: UserModel) -> None:
    """Sign ``user`` in on this request's session and record ``last_login_at``.

    The old session content is dropped first so nothing carries over from before.
    """
    if user.id is None:
        raise ValueError("cannot sign in a user that is not saved")
    request.session.clear()
    request.session[USER_ID_KEY] = str(user.id)
    request.session[SESSION_VERSION_KEY] = user.session_version
    await user.set({UserModel.last_login_at: utcnow()})


def logout(request: Request) -> None:
    """Forget the signed-in user of this session."""
    request.session.clear()


async def current_user(request: Request) -> UserModel | None:
    """The signed-in user, or None.

    A session is ignored (and cleared) when its user was deleted or deactivated, or
    when the user's ``session_version`` moved on (signed out everywhere).
    """
    if "session" not in request.scope:
        return None
    session = request.session
    raw_id = session.get(USER_ID_KEY)
    if not raw_id:
        return None
    user_id = parse_object_id(raw_id)
    if user_id is None:
        session.clear()
        return None
    user = await UserModel.load(user_id)
    if (
        user is None
        or not user.is_active
        or session.get(SESSION_VERSION_KEY) != user.session_version
    ):
        session.clear()
        return None
    return user


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
