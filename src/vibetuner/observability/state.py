"""What this process has installed (light: read by ``vibetuner.observability.otel_wanted``)."""

from __future__ import annotations

from typing import Any

#: The process's ``Telemetry`` once OpenTelemetry is installed (``otel.install``).
telemetry: Any = None
