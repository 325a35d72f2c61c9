"""Who a cached page or fragment is for: everyone, or one verified signed-in user.

Nothing is cached for a request that brings credentials other than the session cookie
(an ``Authorization`` header: an API token's request arrives without its cookies, so it
would otherwise look anonymous) nor for an admin viewing the app as a user (the view's
pages differ from the user's own, and neither may be served the other's).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from vibetuner.auth.session_auth import SESSION_TOKEN_KEY, STASHED_TOKEN_KEY, this_session
from vibetuner.web.flash import SESSION_KEY as FLASHES_KEY

ANONYMOUS = "anonymous"


def has_session_token(scope: Any) -> bool:
    """True when the session cookie names a signed-in session (checked or not)."""
    session = scope.get("session") or {}
    return bool(session.get(SESSION_TOKEN_KEY) or session.get(STASHED_TOKEN_KEY))


def has_authorization(scope: Any) -> bool:
    """True when the request carries an ``Authorization`` header (an API token, ...)."""
    return any(name == b"authorization" for name, _ in scope.get("headers") or ())


def is_view_as(scope: Any) -> bool:
    """True for a browser of an admin viewing the app as a user."""
    session = scope.get("session") or {}
    return bool(session.get(STASHED_TOKEN_KEY))


def has_flashes(scope: Any) -> bool:
    """True when messages wait in the session for the next page."""
    session = scope.get("session") or {}
    return bool(session.get(FLASHES_KEY))


def viewer_of(request: Request) -> str | None:
    """``"anonymous"``, ``"user:<id>"`` for a user whose session this request checked,
    or None when nothing may be cached for the request: a session cookie nobody checked
    yet (the session may be over on the server), a view as the user, or credentials in
    an ``Authorization`` header.
    """
    if has_authorization(request.scope) or is_view_as(request.scope):
        return None
    if not has_session_token(request.scope):
        return ANONYMOUS
    session = this_session(request)
    if session is None or session.impersonator_id is not None:
        return None
    return f"user:{session.user_id}"
