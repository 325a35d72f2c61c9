"""Adds the request id and the signed-in user to the request's span."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.trace import Span
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vibetuner.logs import redacted_path, scrub
from vibetuner.request_id import RequestInfo, current


class RequestSpanTags:
    """Sets ``vibetuner.request_id`` and ``enduser.id`` on the current (server) span.

    Runs inside the session middleware; the user is known once the route has answered.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        span = trace.get_current_span()
        if not span.is_recording():
            await self.app(scope, receive, send)
            return
        info = current()
        if info is None:
            await self.app(scope, receive, send)
            return
        span.set_attribute("vibetuner.request_id", info.id)

        async def send_tagged(message: Message) -> None:
            # The span ends with the response: these are set on it before that.
            if message["type"] == "http.response.start":
                if info.user_id:
                    span.set_attribute("enduser.id", info.user_id)
            await send(message)

        await self.app(scope, receive, send_tagged)


def redact_request(span: Span, scope: Scope) -> None:
    """The server span's ``url.path`` and ``url.query`` as the logs show them: the sign-in
    link's token, a signed download's signature ... redacted (``server_request_hook``:
    it runs for every request, also those refused before routing)."""
    if not span.is_recording():
        return
    path = str(scope.get("path", ""))
    redacted = redacted_path(scope)
    if redacted != path:
        span.set_attribute("url.path", redacted)
    query = scope.get("query_string", b"")
    if query:
        text = query.decode("latin-1")
        scrubbed = scrub(text, RequestInfo(id="", scope=scope))
        if scrubbed != text:
            span.set_attribute("url.query", scrubbed)
