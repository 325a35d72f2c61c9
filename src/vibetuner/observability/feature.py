"""``ObservabilityFeature``: added by ``create_app`` when OpenTelemetry, Prometheus metrics
or Sentry is configured (``vibetuner.observability.features``)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from importlib.util import find_spec
from typing import TYPE_CHECKING, Any

from starlette.middleware import Middleware
from starlette.routing import Route

from vibetuner.features import Feature
from vibetuner.observability import state
from vibetuner.observability.switches import FEATURE_NAME, otel_wanted, prometheus_wanted

if TYPE_CHECKING:
    from fastapi import FastAPI

    from vibetuner.config import Settings
    from vibetuner.context import AppContext

logger = logging.getLogger("vibetuner.observability")
METRICS_PATH = "/metrics"
MIN_TOKEN_LENGTH = 32
# How often the job queue's depth is read for the vibetuner.job.queue.depth gauge.
DEPTH_EVERY = 5.0
# Ports tried above METRICS_PORT when it is taken (several workers on one machine).
PORTS_TRIED = 64


class ObservabilityFeature(Feature):
    """Traces, metrics and error reports, each when configured."""

    name = FEATURE_NAME

    def __init__(self) -> None:
        self.metrics_server: Any = None
        self.metrics_port: int | None = None

    def check_settings(self, settings: Settings) -> list[str]:
        problems = []
        token = settings.metrics_token
        if token is not None and len(token.get_secret_value().strip()) < MIN_TOKEN_LENGTH:
            problems.append(
                f"METRICS_TOKEN must be a random value of at least {MIN_TOKEN_LENGTH} characters "
                "(generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        if otel_wanted() and find_spec("opentelemetry.sdk") is None:
            problems.append("OTEL_* variables ask for OpenTelemetry: pip install 'vibetuner[otel]'")
        if prometheus_wanted(settings) and find_spec("opentelemetry.exporter.prometheus") is None:
            problems.append(
                "METRICS_PORT or METRICS_TOKEN asks for Prometheus metrics: "
                "pip install 'vibetuner[prometheus]'"
            )
        if settings.sentry_dsn is not None and find_spec("sentry_sdk") is None:
            problems.append("SENTRY_DSN is set: pip install 'vibetuner[sentry]'")
        return problems

    def middleware(self) -> Sequence[Middleware]:
        # Traces or metrics name requests by route through it; Sentry alone has no use for
        # it (and may run without OpenTelemetry installed).
        if find_spec("opentelemetry") is None:
            return []
        from vibetuner.observability.request_tags import RequestSpanTags

        return [Middleware(RequestSpanTags)]

    def install(self, settings: Settings) -> bool:
        """Install what ``settings`` turn on: error reports, traces and metrics (of the
        libraries and the jobs). True when traces or metrics are on. A job worker, which
        has no app, calls it directly."""
        if settings.sentry_dsn is not None:
            from vibetuner.observability import sentry

            sentry.install(settings)
        if not (otel_wanted() or prometheus_wanted(settings)):
            return False
        from vibetuner.observability import otel

        otel.install(settings)
        return True

    def instrument_app(self, app: FastAPI) -> None:
        """Install what the app's settings turn on; instrument its requests."""
        from vibetuner.web.context import app_context

        if not self.install(app_context(app).settings):
            return
        from vibetuner.observability import http_server
        from vibetuner.observability.request_tags import RequestRedactor

        telemetry = state.telemetry
        http_server.instrument(
            app,
            tracing=telemetry is not None and telemetry.tracing,
            server_request_hook=RequestRedactor(app.router.routes),
        )
        settings = app_context(app).settings
        if settings.metrics_token is not None:
            from vibetuner.observability.prometheus import MetricsEndpoint

            # Every method: a refused one answers as a missing path, never 405 with Allow.
            app.router.routes.append(Route(METRICS_PATH, MetricsEndpoint()))

    @asynccontextmanager
    async def lifespan(self, context: AppContext) -> AsyncIterator[None]:
        settings = context.settings
        telemetry = state.telemetry
        tasks = []
        if settings.metrics_port is not None:
            from vibetuner.observability.prometheus import serve_metrics

            self.metrics_server, self.metrics_port = serve_metrics(
                settings.metrics_host, settings.metrics_port, PORTS_TRIED
            )
        if telemetry is not None and telemetry.meter_provider is not None:
            tasks.append(asyncio.create_task(_watch_depth(context), name="queue depth"))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self.metrics_server is not None:
                await asyncio.to_thread(self.metrics_server.shutdown)
                self.metrics_server.server_close()
                self.metrics_server = None
            if telemetry is not None:
                await asyncio.to_thread(_flush, telemetry)
            if settings.sentry_dsn is not None:
                from vibetuner.observability import sentry

                await asyncio.to_thread(sentry.flush)


async def _watch_depth(context: AppContext) -> None:
    """Read the job queue's depth every few seconds for the gauge (its callback is sync)."""
    from vibetuner.jobs.queue import find_queue
    from vibetuner.observability.jobs import DEPTHS

    kind = None
    try:
        while True:
            queue = find_queue(context)
            if queue is not None:
                kind = queue.kind
                try:
                    DEPTHS[kind] = await queue.depth()
                except Exception as exc:  # Redis away: the gauge keeps its last value
                    logger.debug("could not read the job queue's depth: %s", exc)
            await asyncio.sleep(DEPTH_EVERY)
    finally:
        if kind is not None:
            DEPTHS.pop(kind, None)


def _flush(telemetry: Any) -> None:
    """Export what is buffered (shutdown: a batch of spans would otherwise be lost)."""
    for provider in (telemetry.tracer_provider, telemetry.meter_provider):
        if provider is not None:
            provider.force_flush(timeout_millis=5000)
