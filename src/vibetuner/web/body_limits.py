"""Request body limits that refuse an oversize body before reading it, and clean
handling of clients that go away in the middle of one.

FastAPI parses a form (``Form()``/``File()`` parameters) before the route runs, and
Starlette spools uploaded files to disk as they come: without a limit, a 1 GiB post is
written to a temporary file before any check of the route can say no. ``body_limit``
makes a route class that checks first:

* a ``Content-Length`` over the limit is answered with 413 at once, nothing read;
* a body without one (chunked) is counted as it arrives, and refused with 413 as soon
  as it goes over; the connection is closed so the rest is never read.

``router = APIRouter(route_class=body_limit(lambda request: 10 * 1024 * 1024))``: the
limit may be a number or a function of the request (to read it from settings).
Routes that stream a body by hand call :func:`check_content_length` and count what
they read, as ``/blobs`` does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import HTTPException, Request, status
from fastapi.responses import Response
from fastapi.routing import APIRoute
from starlette.requests import ClientDisconnect
from starlette.types import Message

from vibetuner.web.request_body import SCOPE_TIMED_OUT

logger = logging.getLogger("vibetuner.requests")

Limit = int | Callable[[Request], int]

__all__ = [
    "ClientDisconnect",
    "body_limit",
    "check_content_length",
    "client_disconnected",
    "declared_length",
    "limit_body",
    "too_large",
]


def format_size(size: int) -> str:
    """``size`` bytes for people: ``512 bytes``, ``16 KiB``, ``50 MiB``."""
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= factor:
            value = size / factor
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{size} bytes"


def too_large(limit: int) -> HTTPException:
    """413 naming the limit; the connection is closed so the rest is never read."""
    return HTTPException(
        status.HTTP_413_CONTENT_TOO_LARGE,
        f"The request body is larger than the limit of {format_size(limit)}.",
        headers={"Connection": "close"},
    )


def declared_length(request: Request) -> int | None:
    """The ``Content-Length`` of ``request``; None without one; 400 when it is not a number.

    A value of more than 18 digits is read as "too large" rather than parsed (Python
    refuses to parse integers of over 4,300 digits).
    """
    raw = request.headers.get("content-length")
    if raw is None:
        return None
    raw = raw.strip()
    if not raw.isascii() or not raw.isdigit():
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "Invalid Content-Length header.")
    digits = raw.lstrip("0")
    return int(digits or "0") if len(digits) <= 18 else 10**18


def check_content_length(request: Request, limit: int) -> None:
    """Raise 413 when ``request`` declares a body longer than ``limit`` bytes."""
    declared = declared_length(request)
    if declared is not None and declared > limit:
        raise too_large(limit)


def limit_body(request: Request, limit: int) -> Request:
    """Refuse a body over ``limit`` bytes: now when declared, else once that many arrive.

    Returns the request to read the body from (the same scope, its ``receive`` counted);
    call before anything reads the body. Reading past the limit raises the 413.
    """
    check_content_length(request, limit)
    receive = request.receive
    received = 0

    async def counted() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise too_large(limit)
        elif message["type"] == "http.disconnect":
            # Say so once here; the parser's error that follows is not a server fault.
            log_disconnect(request)
        return message

    return Request(request.scope, counted)


def body_limit(limit: Limit) -> type[APIRoute]:
    """A route class whose routes refuse a body over ``limit`` before reading it."""

    class BodyLimitedRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Any]:
            handler = super().get_route_handler()

            async def limited(request: Request) -> Response:
                counted = limit_body(request, limit(request) if callable(limit) else limit)
                return await handler(counted)

            return limited

    return BodyLimitedRoute


def log_disconnect(request: Request) -> None:
    """One log line for a client that left before its request body was read."""
    if request.scope.get(SCOPE_TIMED_OUT):
        return  # not the client leaving: its stalled body was given up on, and said so
    client = request.client.host if request.client else "unknown"
    logger.info(
        "client %s disconnected before sending the whole body of %s %s",
        client,
        request.method,
        request.url.path,
    )


async def client_disconnected(request: Request, exc: Exception) -> Response:
    """Exception handler for ``ClientDisconnect``: one log line, no traceback.

    Nobody reads the answer; 400 keeps access logs honest.
    """
    log_disconnect(request)
    return Response(status_code=status.HTTP_400_BAD_REQUEST, headers={"Connection": "close"})
