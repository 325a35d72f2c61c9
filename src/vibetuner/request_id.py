"""The id of the request (or job) being handled, for log lines, error pages and audit entries.

``RequestIdMiddleware`` (``vibetuner.web.request_id``) opens a :class:`RequestInfo` for
each HTTP request and keeps it in a context variable; a job carries the id of the
request that queued it, and the job runner opens one with that id while the job runs.
Code anywhere below asks :func:`current_request_id`; the logging filter
(``vibetuner.logs``) adds the id, the signed-in user and the route to every line.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from typing import Any

HEADER = "X-Request-ID"
# What an incoming id may look like: short, and nothing a log line or a header could
# be broken with (no spaces, quotes, newlines or control characters).
_SANE = re.compile(r"[A-Za-z0-9._-]{1,128}")


@dataclass
class RequestInfo:
    """What the logs say about the request being handled.

    One object per request, shared by reference: code deep inside (the session lookup)
    fills in ``user_id`` and the logging filter reads it, whatever task it runs in.
    """

    id: str
    method: str = ""
    scope: MutableMapping[str, Any] | None = field(default=None, repr=False)
    user_id: str | None = None
    status: int | None = None
    #: The job's name, when this is a job run rather than a request.
    job: str | None = None
    #: Values of the request's secret parameters, found once (``vibetuner.logs``).
    secrets: list[str] | None = field(default=None, repr=False)
    started: float = field(default_factory=time.perf_counter)

    def elapsed_ms(self) -> float:
        """Milliseconds since the request (or job) started."""
        return round((time.perf_counter() - self.started) * 1000, 2)


_current: ContextVar[RequestInfo | None] = ContextVar("vibetuner_request", default=None)


def new_request_id() -> str:
    """A fresh id: 32 hex characters (128 random bits), unique enough to find one
    request in the logs."""
    return os.urandom(16).hex()


def is_sane(value: str) -> bool:
    """True for an id worth keeping: 1 to 128 characters of ``[A-Za-z0-9._-]``."""
    return _SANE.fullmatch(value) is not None


def current() -> RequestInfo | None:
    """The request (or job) being handled here, or None."""
    return _current.get()


def current_request_id() -> str | None:
    """The id of the request (or job) being handled here, or None outside one."""
    info = _current.get()
    return info.id if info is not None else None


def set_user_id(user_id: object) -> None:
    """Record the signed-in user of the current request (for the logs)."""
    info = _current.get()
    if info is not None:
        info.user_id = str(user_id) if user_id is not None else None


def activate(info: RequestInfo) -> Token[RequestInfo | None]:
    """Make ``info`` the current request; hand the result to :func:`deactivate`."""
    return _current.set(info)


def deactivate(token: Token[RequestInfo | None]) -> None:
    """Undo :func:`activate`."""
    _current.reset(token)


@contextmanager
def bound(info: RequestInfo) -> Iterator[RequestInfo]:
    """Make ``info`` the current request for the code inside the block."""
    token = _current.set(info)
    try:
        yield info
    finally:
        _current.reset(token)
