"""``RequestIdMiddleware``: every request gets an id, sent back as ``X-Request-ID``.

An ``X-Request-ID`` sent by the client is kept only when the connection comes from a
reverse proxy in ``TRUSTED_PROXIES`` and the value is a sane token (1 to 128 characters
of ``[A-Za-z0-9._-]``); anyone else could put anything in the logs through it, so any
other request gets a fresh id. The id is current (``vibetuner.request_id``) while the
request is handled: log lines, error pages, audit entries and the jobs it queues carry it.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vibetuner.request_id import HEADER, RequestInfo, activate, deactivate, is_sane, new_request_id
from vibetuner.web.client_address import _parse, is_trusted

_HEADER = HEADER.lower().encode("latin-1")


class RequestIdMiddleware:
    """Outermost of vibetuner's middleware, so the others and the error pages see the id."""

    def __init__(self, app: ASGIApp, trusted_proxies: Sequence[str] = ()) -> None:
        self.app = app
        self.trusted_proxies = tuple(trusted_proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        info = RequestInfo(
            id=self.incoming_id(scope) or new_request_id(),
            method=scope.get("method", "WS"),
            scope=scope,
        )

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                info.status = int(message["status"])
                headers = [h for h in message.get("headers", ()) if h[0].lower() != _HEADER]
                headers.append((_HEADER, info.id.encode("latin-1")))
                message["headers"] = headers
            await send(message)

        token = activate(info)
        try:
            await self.app(scope, receive, send_with_id)
        except BaseException:
            # Left set: Starlette's outermost error handler (the 500 page) and the
            # server's traceback line run after this, in the same task.
            raise
        deactivate(token)

    def incoming_id(self, scope: Scope) -> str | None:
        """The client's ``X-Request-ID`` when a trusted proxy sent it and it is sane."""
        if not self.trusted_proxies:
            return None
        value = None
        forwarded = False
        for name, raw in scope.get("headers", ()):
            if name == b"x-request-id":
                value = raw.decode("latin-1")
            elif name == b"x-forwarded-for":
                forwarded = True
        if value is None or not is_sane(value):
            return None
        return value if self.peer_is_trusted(scope, forwarded) else None

    def peer_is_trusted(self, scope: Scope, forwarded: bool) -> bool:
        """True when the connection came from one of ``TRUSTED_PROXIES``.

        uvicorn (``vibetuner run``) replaces the peer by the forwarded client for
        trusted proxies only, and the forwarded address has no port (0): a direct
        connection always has its real port, so port 0 with ``X-Forwarded-For`` means
        the server already found the peer trusted.
        """
        client = scope.get("client")
        if not client:
            return False
        host, port = client[0], client[1]
        if forwarded and port == 0:
            return True
        address = _parse(str(host))
        return address is not None and is_trusted(address, self.trusted_proxies)
