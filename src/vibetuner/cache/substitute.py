"""Per-response values inside cached HTML: the CSRF token and the CSP nonce.

A page carries its visitor's CSRF token (tied to their session) and a nonce that must be
new in every response. A cached part keeps the values it was rendered with, by name;
each time it is served they are replaced by the values of the response at hand. Both are
random strings of over 20 characters, so they never match anything else in the page.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from vibetuner.web.csrf import SCOPE_TOKEN, csrf_token
from vibetuner.web.security_headers import SCOPE_NONCE, csp_nonce

Text = TypeVar("Text", str, bytes)


def request_values(request: Any) -> dict[str, str]:
    """The CSRF token and nonce this response has used so far, by name."""
    values = {}
    token = request.scope.get(SCOPE_TOKEN)
    if token is not None:
        values["csrf"] = str(token[1])
    nonce = request.scope.get(SCOPE_NONCE)
    if nonce is not None:
        values["nonce"] = str(nonce)
    return values


def stand_ins(text: str | bytes, values: dict[str, str]) -> dict[str, str]:
    """Those of ``values`` that occur in ``text``: what to replace when it is served again."""
    if isinstance(text, bytes):
        return {name: value for name, value in values.items() if value.encode() in text}
    return {name: value for name, value in values.items() if value in text}


def fresh_values(request: Any) -> dict[str, Callable[[], str]]:
    """This response's own values, made only when asked (a token starts a session)."""
    return {"csrf": lambda: csrf_token(request), "nonce": lambda: csp_nonce(request)}


def restore(text: Text, originals: dict[str, str], fresh: dict[str, Callable[[], str]]) -> Text:
    """``text`` with each original value replaced by this response's."""
    for name, original in originals.items():
        value = fresh[name]()
        if isinstance(text, bytes):
            text = text.replace(original.encode(), value.encode())
        else:
            text = text.replace(original, value)
    return text
