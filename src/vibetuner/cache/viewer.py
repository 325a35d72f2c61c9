"""Who a cached page or fragment is for: everyone, or one verified signed-in user."""

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


def has_flashes(scope: Any) -> bool:
    """True when messages wait in the session for the next page."""
    session = scope.get("session") or {}
    return bool(session.get(FLASHES_KEY))


def viewer_of(request: Request) -> str | None:
    """``"anonymous"``, ``"user:<id>"`` for a user whose session this request checked,
    or None for a session cookie nobody checked yet (then nothing may be cached for it:
    the session may be over on the server).
    """
    if not has_session_token(request.scope):
        return ANONYMOUS
    session = this_session(request)
    if session is None:
        return None
    return f"user:{session.user_id}"
