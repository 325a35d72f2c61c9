"""OpenTelemetry for the whole process: providers from the ``OTEL_*`` variables, and the
instrumentation packages of the libraries vibetuner talks through.

:func:`install` runs once per process, when the app is built (before the database
client exists: PyMongo's command listeners apply to clients created after them). It
sets the global tracer and meter providers and instruments:

- PyMongo (a span per command; ``opentelemetry-instrumentation-pymongo``, statements not
  captured) and the latency of every command (``db.client.operation.duration``);
- httpx (OAuth, OpenID discovery; ``opentelemetry-instrumentation-httpx``);
- botocore and aiobotocore (S3; ``opentelemetry-instrumentation-botocore``);
- Redis: coredis (vibetuner's job broker client) has OpenTelemetry built in and is
  switched on; redis-py, when an app uses it, through ``opentelemetry-instrumentation-redis``.

Requests are instrumented per app (``ObservabilityFeature.instrument_app``), jobs by an
attempt observer (:mod:`vibetuner.observability.jobs`).
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass, field
from importlib.util import find_spec
from typing import TYPE_CHECKING, Any

from opentelemetry import metrics, trace
from opentelemetry.context import Context
from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from vibetuner.errors import ConfigurationError
from vibetuner.observability import state
from vibetuner.observability.switches import otel_wanted, prometheus_wanted

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics.export import MetricExporter

    from vibetuner.config import Settings

logger = logging.getLogger("vibetuner.observability")
EXPORTERS = ("otlp", "console", "none")


@dataclass
class Telemetry:
    """What :func:`install` set up in this process."""

    tracer_provider: TracerProvider | None
    meter_provider: MeterProvider | None
    #: Instrumentors to undo in :func:`uninstall` (tests).
    instrumentors: list[Any] = field(default_factory=list)
    observers: list[Any] = field(default_factory=list)

    @property
    def tracing(self) -> bool:
        """Whether spans are recorded."""
        return self.tracer_provider is not None


def install(
    settings: Settings,
    *,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
) -> Telemetry:
    """Set up OpenTelemetry for this process (once; later calls return the same).

    Without providers given, they are built from the ``OTEL_*`` variables (exporters,
    endpoints, headers, sampler, service name) and ``METRICS_*`` (a Prometheus reader).
    Raises ``ConfigurationError`` for an exporter or protocol it cannot use.
    """
    if state.telemetry is not None:
        return state.telemetry  # type: ignore[no-any-return]
    # The stable names: http.server.request.duration (seconds), db.system.name ...
    os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "http,database")
    given = tracer_provider is not None or meter_provider is not None
    from_env = otel_wanted() and not given
    if tracer_provider is None and from_env:
        tracer_provider = tracer_provider_from_env(settings)
    if meter_provider is None and not given:
        readers = metric_readers_from_env() if from_env else []
        if prometheus_wanted(settings):
            from opentelemetry.exporter.prometheus import PrometheusMetricReader

            readers.append(PrometheusMetricReader())
        if readers:
            meter_provider = MeterProvider(
                resource=resource(settings),
                metric_readers=readers,
                # Exemplars (a span id kept with each histogram bucket) cost on every
                # measurement; OTEL_METRICS_EXEMPLAR_FILTER=trace_based turns them on.
                exemplar_filter=None
                if os.environ.get("OTEL_METRICS_EXEMPLAR_FILTER")
                else AlwaysOffExemplarFilter(),
            )
    # The global providers can be set once (a test installs the same ones again).
    if tracer_provider is not None and trace.get_tracer_provider() is not tracer_provider:
        trace.set_tracer_provider(tracer_provider)
    if meter_provider is not None and metrics.get_meter_provider() is not meter_provider:
        metrics.set_meter_provider(meter_provider)
    telemetry = Telemetry(tracer_provider, meter_provider)
    instrument_libraries(telemetry, settings)
    state.telemetry = telemetry
    return telemetry


def uninstall() -> None:
    """Undo the library instrumentation (tests; the global providers stay)."""
    from vibetuner.jobs.observers import stop_observing

    telemetry = state.telemetry
    if telemetry is None:
        return
    for instrumentor in telemetry.instrumentors:
        instrumentor.uninstrument()
    if "coredis" in sys.modules:
        sys.modules["coredis"].Config.otel_enabled = False
    for observer in telemetry.observers:
        observer.enabled = False
        stop_observing(observer)
    state.telemetry = None


def resource(settings: Settings) -> Resource:
    """``OTEL_SERVICE_NAME`` / ``OTEL_RESOURCE_ATTRIBUTES``; the service name defaults
    to ``APP_NAME``."""
    attributes: dict[str, str] = {}
    named = os.environ.get("OTEL_SERVICE_NAME", "").strip() or "service.name=" in os.environ.get(
        "OTEL_RESOURCE_ATTRIBUTES", ""
    )
    if not named:
        attributes["service.name"] = settings.app_name
    return Resource.create(attributes)


def _exporter_names(variable: str) -> list[str]:
    names = [n.strip().lower() for n in os.environ.get(variable, "otlp").split(",") if n.strip()]
    for name in names:
        if name not in EXPORTERS:
            raise ConfigurationError(
                f"{variable}={name!r} is not one of {', '.join(EXPORTERS)} (vibetuner[otel] "
                "ships the OTLP and console exporters)"
            )
    return [name for name in names if name != "none"]


def _protocol(signal: str) -> str:
    protocol = (
        os.environ.get(f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL")
        or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip()
    if protocol == "grpc" and find_spec("opentelemetry.exporter.otlp.proto.grpc") is None:
        raise ConfigurationError(
            "OTEL_EXPORTER_OTLP_PROTOCOL=grpc needs the gRPC exporter: pip install "
            "opentelemetry-exporter-otlp-proto-grpc (or use http/protobuf)"
        )
    if protocol not in ("http/protobuf", "grpc"):
        raise ConfigurationError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r} is not http/protobuf or grpc"
        )
    return protocol


def tracer_provider_from_env(settings: Settings) -> TracerProvider | None:
    """A tracer provider exporting in batches to ``OTEL_TRACES_EXPORTER`` (default otlp);
    None when that is ``none``. The sampler is ``OTEL_TRACES_SAMPLER``'s."""
    exporters: list[SpanExporter] = []
    for name in _exporter_names("OTEL_TRACES_EXPORTER"):
        if name == "console":
            from opentelemetry.sdk.trace.export import ConsoleSpanExporter

            exporters.append(ConsoleSpanExporter())
        elif _protocol("TRACES") == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # type: ignore[import-not-found,unused-ignore]
                OTLPSpanExporter as GrpcSpanExporter,
            )

            exporters.append(GrpcSpanExporter())
        else:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporters.append(OTLPSpanExporter())
    if not exporters:
        return None
    provider = TracerProvider(resource=resource(settings))
    for exporter in exporters:
        provider.add_span_processor(SkipBrokerPolling(BatchSpanProcessor(exporter)))
    return provider


class SkipBrokerPolling(SpanProcessor):
    """Drops Redis spans that belong to no request or job: the job broker's own polling
    (a worker asks Redis for work several times a second) would be most of the traces.
    Redis calls made while a request or a job runs are kept."""

    def __init__(self, processor: SpanProcessor) -> None:
        self.processor = processor

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self.processor.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        scope = span.instrumentation_scope
        if span.parent is None and scope is not None and scope.name == "coredis":
            return
        self.processor.on_end(span)

    def shutdown(self) -> None:
        self.processor.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.processor.force_flush(timeout_millis)


def metric_readers_from_env() -> list[MetricReader]:
    """Periodic readers for ``OTEL_METRICS_EXPORTER`` (default otlp; every
    ``OTEL_METRIC_EXPORT_INTERVAL`` ms)."""
    readers: list[MetricReader] = []
    for name in _exporter_names("OTEL_METRICS_EXPORTER"):
        exporter: MetricExporter
        if name == "console":
            from opentelemetry.sdk.metrics.export import ConsoleMetricExporter

            exporter = ConsoleMetricExporter()
        elif _protocol("METRICS") == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (  # type: ignore[import-not-found,unused-ignore]
                OTLPMetricExporter as GrpcMetricExporter,
            )

            exporter = GrpcMetricExporter()
        else:
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
                OTLPMetricExporter,
            )

            exporter = OTLPMetricExporter()
        readers.append(PeriodicExportingMetricReader(exporter))
    return readers


def instrument_libraries(telemetry: Telemetry, settings: Settings) -> None:
    """Instrument the clients vibetuner uses (those installed), and observe jobs."""
    from vibetuner.jobs.observers import observe_attempts
    from vibetuner.observability.jobs import JobTelemetry
    from vibetuner.observability.mongo import DatabaseLatency

    if telemetry.tracing:
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
        from opentelemetry.instrumentation.pymongo import PymongoInstrumentor

        for instrumentor in (PymongoInstrumentor(), HTTPXClientInstrumentor()):
            instrumentor.instrument()
            telemetry.instrumentors.append(instrumentor)
        if find_spec("aiobotocore") is not None:
            from opentelemetry.instrumentation.botocore import AiobotocoreInstrumentor

            telemetry.instrumentors.append(AiobotocoreInstrumentor())  # type: ignore[no-untyped-call]
            telemetry.instrumentors[-1].instrument()
        if find_spec("botocore") is not None:
            from opentelemetry.instrumentation.botocore import BotocoreInstrumentor

            telemetry.instrumentors.append(BotocoreInstrumentor())  # type: ignore[no-untyped-call]
            telemetry.instrumentors[-1].instrument()
        if find_spec("redis") is not None:
            from opentelemetry.instrumentation.redis import RedisInstrumentor

            telemetry.instrumentors.append(RedisInstrumentor())
            telemetry.instrumentors[-1].instrument()
        if find_spec("coredis") is not None:
            import coredis

            coredis.Config.otel_enabled = True
    if telemetry.meter_provider is not None:
        import pymongo.monitoring

        latency = DatabaseLatency()
        pymongo.monitoring.register(latency)
        telemetry.observers.append(latency)
    jobs = JobTelemetry()
    observe_attempts(jobs)
    telemetry.observers.append(jobs)
