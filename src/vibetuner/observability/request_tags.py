"""The request's span and metrics: its route, id and signed-in user added, secrets in its
path and query redacted."""

from __future__ import annotations

import re
from collections.abc import Sequence

from opentelemetry import trace
from opentelemetry.trace import Span
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vibetuner.logs import REDACTED, SECRET_NAME, scrub
from vibetuner.observability.http_server import ROUTE_SLOT, method_of, route_of
from vibetuner.request_id import RequestInfo, current


class RequestSpanTags:
    """Names the request by its route once the router has matched it: the request
    metrics' ``http.route``, and the server span's (``GET /notes/{note_id}``). Sets
    ``vibetuner.request_id`` and ``enduser.id`` on the span.

    Runs inside the session middleware; the route and user are known once the route has
    answered.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        slot = ROUTE_SLOT.get()
        span = trace.get_current_span()
        recording = span.is_recording()
        info = current()
        if recording and info is not None:
            span.set_attribute("vibetuner.request_id", info.id)
        if slot is None and not recording:
            await self.app(scope, receive, send)
            return

        tagged = False

        def tag() -> None:
            # Once routed: the route (and the user) are known; the span ends with the
            # response, so this runs before that.
            nonlocal tagged
            tagged = True
            route = route_of(scope)
            if slot is not None:
                slot.route = route
            if recording:
                if route is not None:
                    span.set_attribute("http.route", route)
                    method = method_of(scope)
                    span.update_name(f"{'HTTP' if method == '_OTHER' else method} {route}")
                if info is not None and info.user_id:
                    span.set_attribute("enduser.id", info.user_id)

        async def send_tagged(message: Message) -> None:
            if message["type"] == "http.response.start":
                tag()
            await send(message)

        try:
            await self.app(scope, receive, send_tagged)
        except BaseException:
            if not tagged:  # the error page outside answers; the route failed
                tag()
            raise


class RequestRedactor:
    """``server_request_hook``: the server span's ``url.path`` and ``url.query`` as the
    logs show them, the sign-in link's token, a signed download's signature ...
    ``[redacted]``. It runs for every request, also those refused before routing, so it
    matches the path itself, against the few routes that have secret parameters only.
    """

    def __init__(self, routes: Sequence[BaseRoute]) -> None:
        self.routes: list[tuple[re.Pattern[str], list[str]]] = []
        for route in routes:
            regex = getattr(route, "path_regex", None)
            names = [n for n in getattr(route, "param_convertors", {}) if SECRET_NAME.search(n)]
            if regex is not None and names:
                self.routes.append((regex, names))

    def __call__(self, span: Span, scope: Scope) -> None:
        if not span.is_recording():
            return
        path = str(scope.get("path", ""))
        for regex, names in self.routes:
            match = regex.match(path)
            if match is None:
                continue
            redacted = path
            for name in names:
                value = match.group(name)
                if value and len(value) >= 4:
                    redacted = redacted.replace(value, REDACTED)
            if redacted != path:
                span.set_attribute("url.path", redacted)
            break
        query = scope.get("query_string", b"")
        if query:
            text = query.decode("latin-1")
            scrubbed = scrub(text, RequestInfo(id="", scope={"query_string": query}))
            if scrubbed != text:
                span.set_attribute("url.query", scrubbed)
