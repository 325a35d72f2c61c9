"""The request's span and metrics at the edges: a route that fails, made-up methods, a
scope copied before routing. The span is named once the router has matched the route."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import APIRouter
from opentelemetry.trace import SpanKind, StatusCode

from tests.observability.conftest import Recorded
from vibetuner import create_app
from vibetuner.observability.http_server import KNOWN_METHODS

router = APIRouter()


@router.get("/boom/{part}")
async def boom(part: str) -> None:
    raise RuntimeError("the route failed on purpose")


@router.get("/leak/{token}")
async def leak(token: str) -> None:
    raise ValueError(f"no such link: {token}")


@pytest.fixture
async def http(vibetuner_settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    application = create_app(settings=vibetuner_settings, routers=[router])
    async with application.router.lifespan_context(application):
        # The server's 500 page is what a client gets; the error is not re-raised here.
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


def durations(telemetry: Recorded) -> list[dict[str, Any]]:
    return [dict(p.attributes) for p in telemetry.points("http.server.request.duration")]


def count(telemetry: Recorded, attributes: dict[str, Any]) -> int:
    """How many requests the duration histogram holds with exactly ``attributes`` (its
    meter provider lives as long as the test process: compare before and after)."""
    points = telemetry.points("http.server.request.duration")
    return sum(p.count for p in points if dict(p.attributes) == attributes)


async def test_a_failing_route_is_an_error_span_with_its_exception_and_a_500_measured(
    http: httpx.AsyncClient, telemetry: Recorded
) -> None:
    failed = {
        "http.request.method": "GET",
        "http.route": "/boom/{part}",
        "http.response.status_code": 500,
        "error.type": "500",
    }
    before = count(telemetry, failed)
    response = await http.get("/boom/abc")
    assert response.status_code == 500
    (span,) = [s for s in telemetry.spans() if s.kind is SpanKind.SERVER]
    assert span.name == "GET /boom/{part}"
    assert span.attributes is not None and span.attributes["http.route"] == "/boom/{part}"
    assert span.attributes["http.response.status_code"] == 500
    assert span.status.status_code is StatusCode.ERROR
    (event,) = [e for e in span.events if e.name == "exception"]
    assert event.attributes is not None
    assert event.attributes["exception.type"] == "RuntimeError"
    assert count(telemetry, failed) == before + 1, durations(telemetry)
    assert all(p.value == 0 for p in telemetry.points("http.server.active_requests"))


async def test_made_up_methods_share_one_series_and_one_span_name(
    http: httpx.AsyncClient, telemetry: Recorded
) -> None:
    # A client sending a new method per request must not make a metric series per method.
    for method in ("BREW", "X-EVIL-1", "X-EVIL-2"):
        await http.request(method, "/auth/me")
    methods = {a["http.request.method"] for a in durations(telemetry)}
    assert "_OTHER" in methods and methods <= KNOWN_METHODS | {"_OTHER"}, methods
    in_flight = telemetry.points("http.server.active_requests")
    assert {p.attributes["http.request.method"] for p in in_flight} <= KNOWN_METHODS | {"_OTHER"}
    names = {s.name for s in telemetry.spans() if s.kind is SpanKind.SERVER}
    assert names <= {"HTTP", "HTTP /auth/me"}, names


async def test_a_request_whose_scope_is_copied_before_routing_is_measured_by_route(
    http: httpx.AsyncClient, telemetry: Recorded
) -> None:
    # A bearer token makes the middleware drop the cookies from a copy of the scope: the
    # route is set on that copy, and still reaches the metric and the span.
    answered = {
        "http.request.method": "GET",
        "http.route": "/auth/me",
        "http.response.status_code": 401,
    }
    before = count(telemetry, answered)
    response = await http.get("/auth/me", headers={"Authorization": "Bearer not-a-token"})
    assert response.status_code == 401
    assert count(telemetry, answered) == before + 1, durations(telemetry)
    (span,) = [s for s in telemetry.spans() if s.kind is SpanKind.SERVER]
    assert span.name == "GET /auth/me"


async def test_a_request_refused_before_routing_is_measured_without_a_route(
    http: httpx.AsyncClient, telemetry: Recorded
) -> None:
    unrouted = {"http.request.method": "POST", "http.response.status_code": 403}
    before = count(telemetry, unrouted)
    refused = await http.post("/auth/logout", headers={"Origin": "https://evil.example"})
    assert refused.status_code == 403
    (span,) = [s for s in telemetry.spans() if s.kind is SpanKind.SERVER]
    assert span.name == "POST"
    assert span.attributes is not None and "http.route" not in span.attributes
    assert count(telemetry, unrouted) == before + 1, durations(telemetry)


async def test_an_error_message_carrying_the_requests_secret_is_scrubbed_on_the_span(
    http: httpx.AsyncClient, telemetry: Recorded
) -> None:
    # An exception whose message quotes the secret path parameter (a sign-in token)
    # must not carry it to the trace backend.
    secret = "Zx9-sign-in-token-Qw8"
    assert (await http.get(f"/leak/{secret}")).status_code == 500
    (span,) = [s for s in telemetry.spans() if s.kind is SpanKind.SERVER]
    assert span.status.status_code is StatusCode.ERROR
    (event,) = [e for e in span.events if e.name == "exception"]
    assert event.attributes is not None
    assert event.attributes["exception.message"] == "no such link: [redacted]"
    exported = f"{span.status.description} {dict(span.attributes or {})} {dict(event.attributes)}"
    assert secret not in exported
