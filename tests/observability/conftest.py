"""OpenTelemetry with the SDK's in-memory exporters, installed for each test here.

The global tracer and meter providers can be set once per process: one pair serves every
test; each test installs the instrumentation (``otel.install``), and takes it out again
(``otel.uninstall``), so tests elsewhere in the process run uninstrumented.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

# Fixtures of other suites: the OpenID provider, moto's S3, the job log.
from tests.auth.conftest import oidc_provider, provider_browser  # noqa: F401
from tests.blobs.conftest import moto_endpoint  # noqa: F401
from tests.jobs.conftest import job_log  # noqa: F401
from vibetuner.config import Settings


@dataclass
class Recorded:
    """What the in-memory exporters hold."""

    exporter: InMemorySpanExporter
    reader: InMemoryMetricReader

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def trace_of(self, span: ReadableSpan) -> list[ReadableSpan]:
        assert span.context is not None
        return [
            s for s in self.spans() if s.context and s.context.trace_id == span.context.trace_id
        ]

    def points(self, name: str) -> list[Any]:
        """Every data point of the metric ``name`` collected now."""
        data = self.reader.get_metrics_data()
        found = []
        for resource in data.resource_metrics if data else []:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        found.extend(metric.data.data_points)
        return found


@functools.cache
def providers() -> tuple[TracerProvider, MeterProvider, Recorded]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    return tracer_provider, meter_provider, Recorded(exporter, reader)


@pytest.fixture(autouse=True)
def telemetry() -> Iterator[Recorded]:
    """OpenTelemetry on for the test (before its app is built), off after it."""
    from vibetuner.observability import otel

    tracer_provider, meter_provider, recorded = providers()
    recorded.exporter.clear()
    otel.install(
        Settings(_env_file=None),  # type: ignore[call-arg]
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
    )
    try:
        yield recorded
    finally:
        otel.uninstall()
        recorded.exporter.clear()


def tree(spans: list[ReadableSpan]) -> str:
    """The spans of one trace as an indented tree (for failure messages and the docs)."""
    by_parent: dict[int | None, list[ReadableSpan]] = {}
    ids = {s.context.span_id for s in spans if s.context}
    for span in sorted(spans, key=lambda s: s.start_time or 0):
        parent = span.parent.span_id if span.parent and span.parent.span_id in ids else None
        by_parent.setdefault(parent, []).append(span)
    lines: list[str] = []

    def walk(parent: int | None, depth: int) -> None:
        for span in by_parent.get(parent, []):
            took = ((span.end_time or 0) - (span.start_time or 0)) / 1e6
            lines.append(f"{'  ' * depth}{span.name} [{span.kind.name.lower()}] {took:.1f} ms")
            assert span.context is not None
            walk(span.context.span_id, depth + 1)

    walk(None, 0)
    return "\n".join(lines)
