"""Bad settings as one line per variable: its name, what is wrong, how to fix it."""

from __future__ import annotations

import re
from typing import Any

# Values of these are never repeated back (they may be secrets or hold a password).
SECRET_PARTS = ("KEY", "SECRET", "PASSWORD", "TOKEN", "URL")

HINTS = {
    "int_parsing": "must be a whole number",
    "float_parsing": "must be a number",
    "bool_parsing": "must be true or false",
    "literal_error": "",
    "string_pattern_mismatch": "",
}


def settings_error_lines(exc: BaseException, prefix: str = "") -> list[str] | None:
    """One line per bad variable of a settings error, or None if ``exc`` is not one.

    ``prefix`` is the settings class's ``env_prefix`` (a feature's section), so each line
    names the variable as it is set.
    """
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    if isinstance(exc, SettingsError):
        found = re.search(r'field "([^"]+)"', str(exc))
        name = (prefix + found.group(1)).upper() if found else "a setting"
        return [
            f"{name}: must be JSON (a list or an object, for example "
            f'[{{"name": "acme", ...}}]); the value could not be parsed as JSON'
        ]
    if isinstance(exc, ValidationError):
        return [_line(error, prefix) for error in exc.errors()]
    return None


def _line(error: Any, prefix: str = "") -> str:
    name = ".".join(str(part) for part in error["loc"]).upper() or "settings"
    if prefix and error["loc"]:
        name = prefix.upper() + name
    message = str(error["msg"]).removeprefix("Value error, ")
    hint = HINTS.get(error.get("type", ""))
    if hint:
        message = hint
    value = error.get("input")
    secret = any(part in name for part in SECRET_PARTS)
    shown = "" if secret or isinstance(value, dict) or value is None else f" (got {value!r})"
    if "(got " in message:
        shown = ""
    return f"{name}: {message}{shown}"
