"""The signed-in session of a request: read once from the cookie, checked on the server.

``current_user`` is the dependency routes use (through ``vibetuner.auth.session_auth``);
the session it found stays in the request's scope, so later checks cost nothing.
"""

from __future__ import annotations

from fastapi import Request

from vibetuner.auth import sessions
from vibetuner.models.session import UserSession
from vibetuner.models.user import UserModel
from vibetuner.request_id import set_user_id
from vibetuner.web.context import get_context
from vibetuner.web.identity import SCOPE_SESSION, SESSION_TOKEN_KEY
from vibetuner.web.locale import prefer_user_locale

# While an admin views the app as another user, the admin's own session token waits here.
STASHED_TOKEN_KEY = "vt_admin_sid"


async def current_session(request: Request) -> sessions.ActiveSession | None:
    """This request's live session and its user, or None (the cookie is then cleared)."""
    if SCOPE_SESSION in request.scope:
        found: sessions.ActiveSession | None = request.scope[SCOPE_SESSION]
        return found
    if "session" not in request.scope:
        return None
    token = request.session.get(SESSION_TOKEN_KEY)
    active = None
    if isinstance(token, str) and token:
        active = await sessions.resolve_session(token, get_context(request).settings)
        if active is None:
            request.session.clear()  # ended, expired, or its user is gone
        elif active.user.locale:
            prefer_user_locale(request, active.user.locale)
    request.scope[SCOPE_SESSION] = active
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
    active = request.scope.get(SCOPE_SESSION)
    return active.session if isinstance(active, sessions.ActiveSession) else None


def session_providers(request: Request) -> list[str] | None:
    """The user's linked provider names as read with this request's session, or None."""
    active = request.scope.get(SCOPE_SESSION)
    return list(active.providers) if isinstance(active, sessions.ActiveSession) else None
