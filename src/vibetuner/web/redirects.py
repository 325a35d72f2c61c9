"""The ``next`` check: follow a redirect target only when it stays on this site."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

from vibetuner.web.context import get_context

MAX_NEXT_LENGTH = 2048


def is_safe_next(value: object) -> bool:
    """True when ``value`` is a relative path on this site.

    Refused: anything with a scheme or host (``https://x``, ``//x``, ``javascript:``),
    backslashes (browsers read ``/\\x`` as ``//x``), control characters or whitespace,
    and values that turn into one of these once percent-decoded, in case a proxy or
    framework along the way decodes them.
    """
    if not isinstance(value, str) or not value or len(value) > MAX_NEXT_LENGTH:
        return False
    for candidate in (value, unquote(value)):
        if not candidate.startswith("/") or candidate.startswith("//"):
            return False
        if "\\" in candidate or any(
            ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in candidate
        ):
            return False
        parts = urlsplit(candidate)
        if parts.scheme or parts.netloc:
            return False
    return True


def safe_next(value: object, default: str = "/") -> str:
    """``value`` when :func:`is_safe_next` accepts it, else ``default``."""
    return value if is_safe_next(value) else default  # type: ignore[return-value]


def after_sign_in(request: Any, value: object) -> str:
    """Where to go after signing in: a safe ``next``, else ``LOGIN_REDIRECT``."""

    return safe_next(value, get_context(request).settings.login_redirect)
