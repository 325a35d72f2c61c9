"""Prometheus metrics: on their own port, or at ``/metrics`` behind a bearer token.

Both serve ``prometheus_client``'s registry, which OpenTelemetry's Prometheus reader
fills (``otel.install``) along with the process's own metrics (CPU, memory, files).
"""

from __future__ import annotations

import hmac
import logging
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from vibetuner.errors import ConfigurationError

logger = logging.getLogger("vibetuner.observability")


async def metrics_endpoint(request: Request) -> Response:
    """``GET /metrics`` with ``Authorization: Bearer <METRICS_TOKEN>``.

    Any other request (no token, a wrong one, another method) gets the app's 404, the
    very answer of a path that does not exist: a scanner cannot tell metrics are served.
    """
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

    from vibetuner.web.context import app_context

    token = app_context(request.app).settings.metrics_token
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    expected = token.get_secret_value().strip().encode() if token is not None else b""
    if (
        request.method not in ("GET", "HEAD")
        or not expected
        or scheme.lower() != "bearer"
        or not hmac.compare_digest(given.strip().encode(), expected)
    ):
        raise HTTPException(404)
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


class MetricsEndpoint:
    """The ASGI app of the ``/metrics`` route, for every method (a function endpoint
    would get Starlette's 405 with ``Allow`` for any method but GET, which tells that the
    path exists)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await metrics_endpoint(Request(scope, receive))
        await response(scope, receive, send)


def serve_metrics(host: str, port: int, tried: int) -> tuple[Any, int]:
    """Serve the metrics at ``http://host:port/metrics`` in a thread; the next free port
    when ``port`` is taken (another worker of the same app). Returns the server and port."""
    from prometheus_client import start_http_server

    last: OSError | None = None
    for candidate in range(port, min(port + tried, 65536)):
        try:
            server, _thread = start_http_server(candidate, addr=host)
        except OSError as exc:
            last = exc
            continue
        logger.info("Prometheus metrics at http://%s:%d/metrics", host, candidate)
        return server, candidate
    raise ConfigurationError(
        f"cannot serve metrics on {host}:{port} to {port + tried - 1} ({last}); "
        "set METRICS_PORT to a free port"
    )
