"""One logging setup for vibetuner, the app and uvicorn, in every ``vibetuner run`` mode.

:func:`configure_logging` installs one handler on the root logger, so the app's own
``logging.getLogger(__name__).info(...)`` lines show up next to vibetuner's and
uvicorn's (its access log included): readable, coloured lines in development, one JSON
object per line in production (``LOG_FORMAT``). Every line logged while a request or a
job is handled carries its id, the signed-in user and the route (:class:`ContextFilter`).

Secrets stay out: a value the request carries in a secret-looking place (a path
parameter such as the sign-in link's ``{token}``, a query parameter such as ``sig`` or
``code``) is replaced by ``[redacted]`` in every line, the access log's included.

stdlib ``logging`` only, no structlog: apps and libraries log through ``logging``
anyway, and one handler with a filter and a formatter is all this needs.
"""

from __future__ import annotations

import json
import logging
import logging.config
import os
import re
import sys
import time
from collections.abc import MutableMapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, unquote

from vibetuner.request_id import RequestInfo, current

if TYPE_CHECKING:
    from vibetuner.config import Settings

REDACTED = "[redacted]"
# Names of path and query parameters whose values are secrets: ``token``, ``sig``,
# ``code``, ``state``, ``access_token``, ``api_key`` ... (a bare ``key`` names a record,
# as in the admin's ``/admin/{key}/list``, except in a query string).
SECRET_NAME = re.compile(
    r"(?:^|[_.-])(?:token|sig|signature|secret|password|passwd|code|state|session|csrf)"
    r"(?:$|[_.-])|(?:api|access|private|secret|signing|auth|license)[_.-]?key$",
    re.I,
)
# ``name=value`` in a query string, for lines logged outside a request.
_QUERY_SECRET = re.compile(
    r"([?&](?:[\w.-]*[_.-])?(?:token|sig|signature|secret|password|code|state|key)"
    r"(?:[_.-][\w.-]*)?=)[^&\s\"']+",
    re.I,
)
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")
LEVEL_COLOURS = {
    "DEBUG": "\x1b[2m",
    "INFO": "\x1b[32m",
    "WARNING": "\x1b[33m",
    "ERROR": "\x1b[31m",
    "CRITICAL": "\x1b[1;31m",
}
RESET = "\x1b[0m"
DIM = "\x1b[2m"


def log_format(settings: Settings) -> str:
    """``json`` or ``text``: ``LOG_FORMAT``, where ``auto`` is JSON in production only."""
    if settings.log_format == "auto":
        return "json" if settings.is_production else "text"
    return settings.log_format


def logging_config(settings: Settings) -> dict[str, Any]:
    """The ``logging.config.dictConfig`` of ``settings``: one handler on the root logger.

    Given to uvicorn as ``log_config`` too, so each server process (the reloader's
    and every worker) sets logging up the same way.
    """
    formatter = JsonFormatter if log_format(settings) == "json" else TextFormatter
    loggers: dict[str, dict[str, Any]] = {
        # uvicorn's loggers lose their own handlers and pass everything to the root's.
        name: {"handlers": [], "propagate": True, "level": "NOTSET"}
        for name in UVICORN_LOGGERS
    }
    for name, level in settings.log_levels.items():
        loggers.setdefault(name, {"propagate": True})["level"] = level
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": f"{__name__}.ContextFilter"}},
        "formatters": {"vibetuner": {"()": f"{__name__}.{formatter.__name__}"}},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "vibetuner",
                "filters": ["context"],
            }
        },
        "root": {"level": settings.log_level, "handlers": ["console"]},
        "loggers": loggers,
    }


def configure_logging(settings: Settings) -> None:
    """Set up logging for the whole process from ``LOG_LEVEL``, ``LOG_FORMAT``, ``LOG_LEVELS``.

    ``vibetuner run dev|prod|worker`` call it; scripts and other servers may too.
    """
    logging.config.dictConfig(logging_config(settings))
    logging.captureWarnings(True)


class ContextFilter(logging.Filter):
    """Adds the request's (or job's) id, user and route to each record, and scrubs secrets.

    Attached to the handler, so it sees the lines of every logger, uvicorn's access log
    included (uvicorn logs it from inside the request, where the id is current).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "vibetuner_context", False):
            return True  # filled in by another handler already
        record.vibetuner_context = True
        info = current()
        record.request_id = info.id if info is not None else None
        record.user_id = info.user_id if info is not None else None
        record.job = info.job if info is not None else None
        record.route = _route(info)
        record.method = info.method or None if info is not None else None
        record.status = None
        record.duration_ms = None
        if record.name == "uvicorn.access" and isinstance(record.args, tuple):
            # (client, method, path with query, HTTP version, status)
            if len(record.args) == 5:
                record.status = record.args[4]
                record.method = record.args[1]
            if info is not None:
                record.duration_ms = info.elapsed_ms()
        message = record.getMessage()
        scrubbed = scrub(message, info)
        if scrubbed != message or record.args:
            record.msg, record.args = scrubbed, ()
        return True


def _route(info: RequestInfo | None) -> str | None:
    """The path template of the matched route (``/blobs/{blob_id}``), when known."""
    if info is None or info.scope is None:
        return None
    route = info.scope.get("route")
    path = getattr(route, "path", None)
    if path is None:
        return None
    # Inside a mounted app (the admin) the route's path is relative to the mount.
    return f"{info.scope.get('root_path', '')}{path}"


def scrub(text: str, info: RequestInfo | None = None) -> str:
    """``text`` with the request's secret parameters, and secret-looking query values, redacted."""
    if info is not None:
        for value in secret_values(info):
            if value in text:
                text = text.replace(value, REDACTED)
            quoted = quote(value, safe="")
            if quoted != value and quoted in text:
                text = text.replace(quoted, REDACTED)
    return _QUERY_SECRET.sub(lambda match: match.group(1) + REDACTED, text)


def secret_values(info: RequestInfo) -> list[str]:
    """Values of the request's path and query parameters with secret names (cached)."""
    if info.secrets is not None:
        return info.secrets
    scope = info.scope or {}
    found: list[str] = []
    params = scope.get("path_params")
    if params is None:
        params = _match_path_params(scope)
    for name, value in (params or {}).items():
        if SECRET_NAME.search(str(name)) and isinstance(value, str) and len(value) >= 4:
            found.append(value)
    query = scope.get("query_string", b"")
    if isinstance(query, bytes) and query:
        for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=False):
            secret = SECRET_NAME.search(name) or name.lower() == "key"
            if secret and len(value) >= 4:
                found.append(value)
    found = sorted(set(found) | {unquote(v) for v in found}, key=len, reverse=True)
    if "route" in scope:  # routed: the parameters are final, keep them
        info.secrets = found
    return found


def _match_path_params(scope: MutableMapping[str, Any]) -> dict[str, Any]:
    """The path parameters the app's router would give (a line logged before routing)."""
    from starlette.routing import Match

    app = scope.get("app")
    routes = getattr(getattr(app, "router", None), "routes", ())
    probe = {**scope, "type": "http"}
    for route in routes:
        try:
            match, child = route.matches(probe)
        except Exception:  # a route that cannot judge this scope
            continue
        if match is Match.FULL:
            params: dict[str, Any] = child.get("path_params", {})
            return params
    return {}


def redacted_path(scope: MutableMapping[str, Any]) -> str:
    """The request's path with secret path parameters redacted (for log lines)."""
    path = str(scope.get("path", ""))
    info = current()
    if info is None or info.scope is not scope:
        info = RequestInfo(id="", scope=scope)
    return scrub(path, info)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: timestamp, level, logger, message and the request's fields."""

    FIELDS = ("request_id", "user_id", "job", "route", "method", "status", "duration_ms")

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in self.FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = scrub(self.formatException(record.exc_info), current())
        elif record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``12:00:01 INFO  myapp.routes: message  [id user route]``, coloured on a terminal."""

    def __init__(self, colour: bool | None = None) -> None:
        super().__init__()
        self.colour = _wants_colour() if colour is None else colour

    def format(self, record: logging.LogRecord) -> str:
        moment = time.strftime("%H:%M:%S", time.localtime(record.created))
        level = record.levelname
        shown_level = f"{level:<7}"
        if self.colour:
            shown_level = f"{LEVEL_COLOURS.get(level, '')}{shown_level}{RESET}"
        line = f"{moment} {shown_level} {record.name}: {record.getMessage()}"
        tags = [
            f"{name}={value}"
            for name in ("request_id", "user_id", "job", "duration_ms")
            if (value := getattr(record, name, None)) is not None
        ]
        if tags:
            extra = "  [" + " ".join(tags) + "]"
            line += f"{DIM}{extra}{RESET}" if self.colour else extra
        if record.exc_info:
            line += "\n" + scrub(self.formatException(record.exc_info), current())
        elif record.exc_text:
            line += "\n" + record.exc_text
        return line


def _wants_colour() -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return sys.stderr.isatty()
