"""Whom a limit counts: the client address, the user, the session, or a function's value.

Each subject starts with its kind (``address:``, ``user:`` ...), so a user id can never
share a counter with an address or with a value an app's own key function returns.
Requests without a user or a session (anonymous ones) count by client address, so
leaving the cookie out never escapes a limit.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Awaitable, Callable
from typing import Literal

from starlette.requests import HTTPConnection

from vibetuner.web.client_address import client_address
from vibetuner.web.identity import SESSION_TOKEN_KEY

KeyFunction = Callable[[HTTPConnection], "str | None | Awaitable[str | None]"]
KeyKind = Literal["address", "user", "session"]


def by_address(request: HTTPConnection) -> str:
    """The client's address behind ``TRUSTED_PROXIES`` (IPv6 per /64 network)."""
    return f"address:{client_address(request) or 'unknown'}"


def session_token(request: HTTPConnection) -> str | None:
    """The signed-in session's token from the signed cookie (no database read), or None."""
    if "session" not in request.scope:
        return None
    token = request.session.get(SESSION_TOKEN_KEY)
    return token if isinstance(token, str) and token else None


def by_session(request: HTTPConnection) -> str:
    """The signed-in session (a hash of its token), else the client address."""
    token = session_token(request)
    if token is None:
        return by_address(request)
    return "session:" + hashlib.sha256(token.encode()).hexdigest()[:32]


async def by_user(request: HTTPConnection) -> str:
    """The signed-in user (every session of theirs shares it), else the client address.

    Reads the session the way ``current_user`` does, once per request.
    """
    from fastapi import Request

    from vibetuner.auth.session_auth import current_user

    if "session" not in request.scope or not isinstance(request, Request):
        return by_address(request)
    user = await current_user(request)
    return f"user:{user.id}" if user is not None else by_address(request)


async def subject_of(request: HTTPConnection, key: KeyKind | KeyFunction) -> str:
    """The subject ``key`` names for ``request``.

    An app's function gets ``custom:`` in front of its value; when it returns None or
    an empty string the request counts by client address.
    """
    if key == "address":
        return by_address(request)
    if key == "session":
        return by_session(request)
    if key == "user":
        return await by_user(request)
    if isinstance(key, str):
        raise ValueError(
            f"unknown rate-limit key {key!r}: use address, user, session or a function"
        )
    value = key(request)
    if inspect.isawaitable(value):
        value = await value
    if value is None or value == "":
        return by_address(request)
    return f"custom:{value}"
