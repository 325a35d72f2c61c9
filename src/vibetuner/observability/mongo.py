"""``db.client.operation.duration``: the latency of every MongoDB command, by operation.

The PyMongo instrumentation makes spans only; this command listener (PyMongo's public
monitoring API) records each command's own duration as the driver measured it.
"""

from __future__ import annotations

from opentelemetry import metrics
from pymongo import monitoring


class DatabaseLatency(monitoring.CommandListener):
    """Records succeeded and failed commands' durations, in seconds."""

    def __init__(self) -> None:
        self.enabled = True
        self.histogram = metrics.get_meter("vibetuner.mongo").create_histogram(
            "db.client.operation.duration",
            unit="s",
            description="Duration of MongoDB commands, by operation",
        )

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        pass

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        if self.enabled:
            self._record(event.command_name, event.database_name, event.duration_micros, None)

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        if self.enabled:
            failure = event.failure
            error = (
                str(failure.get("codeName") or "error") if isinstance(failure, dict) else "error"
            )
            self._record(event.command_name, event.database_name, event.duration_micros, error)

    def _record(self, name: str, database: str, micros: int, error: str | None) -> None:
        attributes = {
            "db.system.name": "mongodb",
            "db.operation.name": name,
            "db.namespace": database,
        }
        if error is not None:
            attributes["error.type"] = error
        self.histogram.record(micros / 1_000_000, attributes)
