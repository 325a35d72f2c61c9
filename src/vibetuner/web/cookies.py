"""The request's cookies, read the one way every part of vibetuner reads them.

Starlette's ``Request.cookies`` (and so its ``SessionMiddleware``) parses each
``Cookie`` header with ``starlette.requests.cookie_parser``, which skips what it cannot
read and keeps going. Python's ``http.cookies.SimpleCookie`` instead stops at the first
pair it dislikes (``x=a"b``, ``version=1`` ...) and drops the rest of the header, so a
middleware using it could miss a cookie the session still reads. Every middleware that
looks at cookies before a ``Request`` exists uses :func:`scope_cookies`.
"""

from __future__ import annotations

from starlette.requests import cookie_parser
from starlette.types import Scope


def scope_cookies(scope: Scope) -> dict[str, str]:
    """The cookies of an HTTP ``scope``, exactly as ``Request(scope).cookies`` reads them.

    Every ``Cookie`` header is parsed, in order; a name given twice keeps its last value.
    """
    cookies: dict[str, str] = {}
    for name, value in scope["headers"]:
        if name == b"cookie":
            cookies.update(cookie_parser(value.decode("latin-1")))
    return cookies
