"""Production telemetry, each part optional: OpenTelemetry, Prometheus metrics, Sentry.

Nothing here is on the start path unless configured: :func:`features` looks at the
settings and the standard ``OTEL_*`` variables and imports the OpenTelemetry SDK,
``prometheus_client`` or ``sentry_sdk`` only for what they turn on.

- **OpenTelemetry** (``vibetuner[otel]``): on when an ``OTEL_EXPORTER_OTLP_*ENDPOINT``,
  ``OTEL_TRACES_EXPORTER`` or ``OTEL_METRICS_EXPORTER`` variable is set (and
  ``OTEL_SDK_DISABLED`` is not ``true``). Spans for requests, MongoDB commands, Redis
  calls, outgoing HTTP calls (httpx, botocore) and job attempts; metrics for requests,
  jobs, the queue's depth and database latency (:mod:`vibetuner.observability.otel`).
- **Prometheus** (``vibetuner[prometheus]``): the same metrics at ``METRICS_PORT`` or, with a
  bearer token, at ``/metrics`` (``METRICS_TOKEN``); never public by default.
- **Sentry** (``vibetuner[sentry]``): ``SENTRY_DSN`` (:mod:`vibetuner.observability.sentry`).
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING

from vibetuner.observability.switches import FEATURE_NAME, otel_wanted, prometheus_wanted

__all__ = [
    "FEATURE_NAME",
    "features",
    "instrument_app",
    "native_telemetry_off",
    "otel_wanted",
    "prometheus_wanted",
]

if TYPE_CHECKING:
    from fastapi import FastAPI

    from vibetuner.config import Settings
    from vibetuner.features import Feature


def features(settings: Settings, present: list[Feature]) -> list[Feature]:
    """The observability feature when anything is configured, unless ``present`` has it."""
    if any(feature.name == FEATURE_NAME for feature in present):
        return []
    if not (otel_wanted() or prometheus_wanted(settings) or settings.sentry_dsn is not None):
        return []
    from vibetuner.observability.feature import ObservabilityFeature

    return [ObservabilityFeature()]


def native_telemetry_off(settings: Settings) -> bool:
    """True when vibetuner traces and measures requests itself and the installed FastAPI
    has telemetry of its own (its ``telemetry`` argument), which then stays off."""
    if not (otel_wanted() or prometheus_wanted(settings)):
        return False
    from fastapi import FastAPI

    return "telemetry" in inspect.signature(FastAPI.__init__).parameters


def instrument_app(app: FastAPI) -> None:
    """Give ``app`` its request spans and metrics when its observability feature is on.

    Called by ``create_app`` once the app is built: the instrumentation wraps every
    middleware, so refusals (CSRF, body limits) are measured too.
    """
    from vibetuner.web.context import app_context

    for feature in app_context(app).features:
        if feature.name == FEATURE_NAME:
            from vibetuner.observability.feature import ObservabilityFeature

            if isinstance(feature, ObservabilityFeature):
                feature.instrument_app(app)
