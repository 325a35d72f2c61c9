"""The request's span and metrics, around the whole app (every middleware, the error pages).

The span is OpenTelemetry's ASGI middleware's (``opentelemetry-instrumentation-asgi``).
The FastAPI instrumentation would name it by matching the path against every route
before the request runs, a second match beside the router's own (on the notes page
about a third of tracing's cost). Here the span starts named by its method and takes the
route the router chose as the response starts (``RequestSpanTags``), as OpenTelemetry's
conventions allow; a request refused before routing (CSRF, body limits) has no route.

The request metrics are :class:`RequestMetrics`'s, not the middleware's: two instruments
(duration by route, method and status; requests in flight) where the middleware records
four (also request and response body sizes) before the route is known.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from opentelemetry import metrics, trace
from opentelemetry.trace import Status, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from fastapi import FastAPI

#: Methods kept as they are in span names and metric attributes; any other is ``_OTHER``
#: (a client must not be able to make a metric series per made-up method).
KNOWN_METHODS = frozenset(
    ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "QUERY")
)
# OpenTelemetry's advice for http.server.request.duration, in seconds.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)


class RouteSlot:
    """Where the routed request's route template is left for :class:`RequestMetrics`
    (the scope it sees may be a copy made before routing)."""

    __slots__ = ("route",)

    def __init__(self) -> None:
        self.route: str | None = None


#: The current request's slot (set by :class:`RequestMetrics`, filled by ``RequestSpanTags``).
ROUTE_SLOT: ContextVar[RouteSlot | None] = ContextVar("vibetuner_route_slot", default=None)


def method_of(scope: Scope) -> str:
    """The request's method, or ``_OTHER`` for one outside :data:`KNOWN_METHODS`."""
    method = str(scope.get("method", ""))
    return method if method in KNOWN_METHODS else "_OTHER"


def route_of(scope: Scope) -> str | None:
    """The template of the route the router matched (``/notes/{note_id}``), or None."""
    path = getattr(scope.get("route"), "path", None)
    if path is None:
        return None
    # Inside a mounted app (the admin) the route's path is relative to the mount.
    return f"{scope.get('root_path', '')}{path}"


def span_details(scope: Scope) -> tuple[str, dict[str, Any]]:
    """``default_span_details`` of the ASGI middleware: the method alone (``HTTP`` for an
    unknown one) until the route is known; no route match of its own."""
    method = method_of(scope)
    return ("HTTP" if method == "_OTHER" else method), {}


class RequestMetrics:
    """``http.server.request.duration`` (s; ``http.route``, ``http.request.method``,
    ``http.response.status_code``, ``error.type`` for a failure) and
    ``http.server.active_requests`` (``http.request.method``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        meter = metrics.get_meter("vibetuner.http")
        self.duration = meter.create_histogram(
            "http.server.request.duration",
            unit="s",
            description="Duration of HTTP server requests.",
            explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS),
        )
        self.active = meter.create_up_down_counter(
            "http.server.active_requests",
            unit="{request}",
            description="Number of active HTTP server requests.",
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        method = method_of(scope)
        in_flight = {"http.request.method": method}
        self.active.add(1, in_flight)
        slot = RouteSlot()
        token = ROUTE_SLOT.set(slot)
        status = 0

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        error: str | None = None
        try:
            await self.app(scope, receive, send_status)
        except BaseException as exc:
            error = type(exc).__qualname__
            raise
        finally:
            ROUTE_SLOT.reset(token)
            attributes: dict[str, str | int] = {"http.request.method": method}
            if slot.route is not None:
                attributes["http.route"] = slot.route
            if status:
                attributes["http.response.status_code"] = status
                if status >= 500:
                    attributes["error.type"] = str(status)
            elif error is not None:
                attributes["error.type"] = error
            self.duration.record(time.perf_counter() - started, attributes)
            self.active.add(-1, in_flight)


class SpanErrors:
    """Records an unhandled exception on the request's span, before the error page (the
    span ends with the 500 response, so the middleware around could no longer), its
    message scrubbed of the request's secrets as the logs' lines are."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except Exception as exc:
            span = trace.get_current_span()
            if span.is_recording():
                from vibetuner.logs import scrub
                from vibetuner.request_id import current

                # As the logs write them: the request's secrets redacted (the traceback's
                # last line quotes the message too).
                info = current()
                message = scrub(str(exc), info)
                stacktrace = scrub("".join(traceback.format_exception(exc)), info)
                span.record_exception(
                    exc,
                    attributes={"exception.message": message, "exception.stacktrace": stacktrace},
                )
                span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {message}"))
            raise


def instrument(app: FastAPI, tracing: bool, server_request_hook: Callable[..., None]) -> None:
    """Wrap ``app``'s whole middleware stack (its error pages included, so a 500 is
    measured as one) in the request metrics and, when ``tracing``, the request span."""
    if tracing:
        # Outermost of the app's middleware: inside the error pages.
        app.add_middleware(SpanErrors)
    build = app.build_middleware_stack

    def build_middleware_stack() -> ASGIApp:
        stack: ASGIApp = RequestMetrics(build())
        if tracing:
            from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
            from opentelemetry.metrics import NoOpMeterProvider
            from opentelemetry.util.http import get_excluded_urls

            stack = OpenTelemetryMiddleware(
                stack,
                # OTEL_PYTHON_FASTAPI_EXCLUDED_URLS, as the FastAPI instrumentation reads.
                excluded_urls=get_excluded_urls("FASTAPI"),
                default_span_details=span_details,
                server_request_hook=server_request_hook,
                # The request metrics are RequestMetrics's: none recorded twice.
                meter_provider=NoOpMeterProvider(),
                # No span per ASGI message: two spans a request fewer, same information.
                exclude_spans=["receive", "send"],
            )
        return stack

    # Starlette builds the stack on the first request (or lifespan) through this method.
    app.build_middleware_stack = build_middleware_stack  # type: ignore[method-assign]
    app.middleware_stack = None
