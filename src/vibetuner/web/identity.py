"""Who is signed in, as the core sees it, without depending on the sign-in feature.

The core's pages, locale switch and cache headers ask here; the sign-in feature
(``vibetuner.auth``) writes the session token under :data:`SESSION_TOKEN_KEY`, keeps the
session it found for a request in the scope under :data:`SCOPE_SESSION`, sets
``AppContext.user_loader`` and provides a ``SignIn`` (where its pages are). Without a
sign-in feature nobody is signed in.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.routing import NoMatchFound

from vibetuner.features import SignIn
from vibetuner.web.context import get_context

#: The session key of the signed-in browser's session token.
SESSION_TOKEN_KEY = "sid"
#: Where the sign-in feature keeps what it found, so a request checks its session once.
SCOPE_SESSION = "vibetuner.session"


def wants_html(request: Request) -> bool:
    """True for a browser navigation (Accept prefers HTML), False for API clients."""
    accept = request.headers.get("accept", "")
    return "text/html" in accept and "application/json" not in accept


def login_path(request: Request) -> str | None:
    """The sign-in page's path (the ``SignIn`` the sign-in feature provides), or None
    when the app has no sign-in."""
    sign_in = get_context(request).find(SignIn)
    if sign_in is None:
        return None
    try:
        return str(request.app.url_path_for(sign_in.login_route))
    except NoMatchFound:
        return None


def signed_in_hint(request: Request) -> bool:
    """True when the browser's session holds a session token (not checked on the server)."""
    return "session" in request.scope and SESSION_TOKEN_KEY in request.session


async def signed_in_user(request: Request) -> Any:
    """The signed-in user (checked by the sign-in feature), or None without one."""
    loader = get_context(request).user_loader
    return None if loader is None else await loader(request)
