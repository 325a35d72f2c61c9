"""What turns each part of the telemetry on: the ``OTEL_*`` variables and the settings."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from vibetuner.observability import state

if TYPE_CHECKING:
    from vibetuner.config import Settings

FEATURE_NAME = "observability"
# Variables that turn OpenTelemetry on (the OTLP exporters read them themselves).
OTEL_SWITCHES = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    "OTEL_TRACES_EXPORTER",
    "OTEL_METRICS_EXPORTER",
)


def otel_wanted(environ: Mapping[str, str] | None = None) -> bool:
    """True when the ``OTEL_*`` variables ask for OpenTelemetry (or a test installed it)."""
    if state.telemetry is not None:
        return True
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return any(env.get(name, "").strip() for name in OTEL_SWITCHES)


def prometheus_wanted(settings: Settings) -> bool:
    """True when ``METRICS_PORT`` or ``METRICS_TOKEN`` asks for Prometheus metrics."""
    return settings.metrics_port is not None or settings.metrics_token is not None
