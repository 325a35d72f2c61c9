"""Signed-cookie sessions: middleware settings and the ``login``/``logout`` helpers."""

from __future__ import annotations

import logging
import secrets
from typing import Any

from starlette.requests import Request

from vibetuner.config import Settings
from vibetuner.models.mixins import utcnow
from vibetuner.models.user import UserModel

logger = logging.getLogger("vibetuner.sessions")

USER_ID_KEY = "uid"
SESSION_VERSION_KEY = "sv"


def session_secret(settings: Settings) -> str:
    """The key that signs session cookies.

    ``SESSION_KEY`` in production (``Settings`` refuses to load without a real one);
    elsewhere a random key per process when it is unset, with a warning, since sessions
    then do not survive a restart or span several processes.
    """
    if settings.session_key is not None and settings.session_key.get_secret_value():
        return settings.session_key.get_secret_value()
    logger.warning(
        "SESSION_KEY is not set: using a random key for this process; sessions end when it "
        "restarts. Set SESSION_KEY to keep them."
    )
    return secrets.token_urlsafe(48)


def session_middleware_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for Starlette's ``SessionMiddleware``.

    The cookie is always HttpOnly (Starlette sets it) and SameSite=Lax; it is Secure
    everywhere but in development and tests, which run on plain http://127.0.0.1.
    """
    return {
        "secret_key": session_secret(settings),
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
