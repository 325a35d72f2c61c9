"""FastAPI dependencies that give routes the signed-in user."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from beanie import PydanticObjectId
from bson.errors import InvalidId
from fastapi import Depends, HTTPException, Request, status

from vibetuner.models.user import UserModel
from vibetuner.web.sessions import SESSION_VERSION_KEY, USER_ID_KEY

LOGIN_PATH = "/auth/login"


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
    try:
        user_id = PydanticObjectId(raw_id)
    except (InvalidId, TypeError, ValueError):
        session.clear()
        return None
    user = await UserModel.get(user_id)
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


async def require_user(
    request: Request, user: Annotated[UserModel | None, Depends(current_user)]
) -> UserModel:
    """The signed-in user; else 401 JSON for API calls or a redirect to the login page."""
    if user is not None:
        return user
    if wants_html(request) and request.method in ("GET", "HEAD"):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise HTTPException(
            status_code=status.HTTP_303_SEE_OTHER,
            detail="Sign in to continue.",
            headers={"Location": f"{LOGIN_PATH}?next={quote(target, safe='')}"},
        )
    raise HTTPException(status_code=status.HTTP_401_UNAUTHORIZED, detail="Not signed in.")


CurrentUser = Annotated[UserModel | None, Depends(current_user)]
RequireUser = Annotated[UserModel, Depends(require_user)]
