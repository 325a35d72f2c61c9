"""Which language a request is answered in.

In order: the signed-in user's saved preference (kept in the session when they sign in
or change it, and checked again when the route looks the user up), the ``vt_locale``
cookie set by the layout's language switch, the browser's ``Accept-Language``, then
``DEFAULT_LOCALE``. Only ``LOCALES`` are ever chosen.
"""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from vibetuner import i18n
from vibetuner.web.context import get_context
from vibetuner.web.cookies import scope_cookies

LOCALE_COOKIE = "vt_locale"
LOCALE_COOKIE_BYTES = LOCALE_COOKIE.encode()
SESSION_LOCALE_KEY = "locale"
SCOPE_LOCALE = "vibetuner.locale"


def choose_locale(scope: Scope, catalogs: i18n.Catalogs) -> str:
    """The locale for a request, by the precedence above (the user is looked up later)."""
    session: dict[str, Any] = scope.get("session") or {}
    chosen = catalogs.pick(session.get(SESSION_LOCALE_KEY))
    if chosen is not None:
        return chosen
    accept = b""
    has_cookie = False
    # One pass over the raw headers: this runs on every request.
    for name, value in scope["headers"]:
        if name == b"cookie":
            has_cookie = has_cookie or LOCALE_COOKIE_BYTES in value
        elif name == b"accept-language":
            accept = value
    if has_cookie:
        # Read as the session middleware reads cookies: a malformed pair is skipped.
        chosen = catalogs.pick(scope_cookies(scope).get(LOCALE_COOKIE))
    if chosen is None and accept:
        chosen = catalogs.negotiate(accept[:512].decode("latin-1"))
    return chosen or catalogs.default


class LocaleMiddleware:
    """Makes the request's locale current for everything that runs inside it."""

    def __init__(self, app: ASGIApp, catalogs: i18n.Catalogs) -> None:
        self.app = app
        self.catalogs = catalogs

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        locale = choose_locale(scope, self.catalogs)
        scope[SCOPE_LOCALE] = locale
        # A language without a catalog (English, the source) has nothing to translate:
        # no state and no Babel (a later switch to the user's language still works).
        if self.catalogs.has_catalog(locale):
            token = i18n.begin(self.catalogs, locale)
        else:
            token = i18n.clear()
        try:
            await self.app(scope, receive, send)
        finally:
            i18n.end(token)


def prefer_user_locale(request: Any, user_locale: str | None) -> None:
    """Switch to a signed-in user's saved language, and remember it in the session."""

    catalogs = get_context(request).i18n
    chosen = catalogs.pick(user_locale)
    if chosen is None:
        return
    if "session" in request.scope and request.session.get(SESSION_LOCALE_KEY) != chosen:
        request.session[SESSION_LOCALE_KEY] = chosen
    if request.scope.get(SCOPE_LOCALE) != chosen:
        request.scope[SCOPE_LOCALE] = chosen
        i18n.switch(catalogs, chosen)
