"""A span and metrics per job attempt, the span linked to the request that queued the job.

The trace context of the code that queues a job (a request's span) travels with the job
as W3C ``traceparent`` headers; each attempt is the root of its own trace (a job may run
minutes later, in another process) with a link back to that span.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from opentelemetry import context, metrics, propagate, trace
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from vibetuner.request_id import current_request_id

if TYPE_CHECKING:
    from vibetuner.jobs.registry import JobTask
    from vibetuner.jobs.runner import Outcome

JOB = "vibetuner.job.name"
#: Jobs waiting, by queue kind; kept fresh by the observability feature's lifespan.
DEPTHS: dict[str, int] = {}


def _observe_depth(options: CallbackOptions) -> Iterable[Observation]:
    return [Observation(depth, {"vibetuner.job.queue": kind}) for kind, depth in DEPTHS.items()]


class JobTelemetry:
    """The attempt observer ``otel.install`` adds to the job queues."""

    def __init__(self) -> None:
        self.enabled = True
        self.tracer = trace.get_tracer("vibetuner.jobs")
        meter = metrics.get_meter("vibetuner.jobs")
        self.runs = meter.create_counter(
            "vibetuner.job.runs",
            unit="{run}",
            description="Job attempts, by job and outcome (succeeded, retried, failed)",
        )
        self.duration = meter.create_histogram(
            "vibetuner.job.duration", unit="s", description="How long job attempts took"
        )
        # (The meter hands back the instrument of the first call: one callback per process.)
        meter.create_observable_gauge(
            "vibetuner.job.queue.depth",
            callbacks=[_observe_depth],
            unit="{job}",
            description="Jobs waiting in the queue (queued or scheduled)",
        )

    def headers(self) -> dict[str, str]:
        carrier: dict[str, str] = {}
        if self.enabled:
            propagate.inject(carrier)
        return carrier

    @contextmanager
    def attempt(
        self, job: JobTask, number: int, headers: dict[str, str] | None
    ) -> Iterator[Callable[[Outcome, float], None]]:
        if not self.enabled:
            yield lambda outcome, seconds: None
            return
        links = []
        if headers:
            queued_by = trace.get_current_span(propagate.extract(headers)).get_span_context()
            if queued_by.is_valid:
                links.append(Link(queued_by))
        attributes: dict[str, Any] = {JOB: job.name, "vibetuner.job.attempt": number}
        request_id = current_request_id()
        if request_id:
            attributes["vibetuner.request_id"] = request_id
        # A new trace (an empty parent context), linked to the one that queued the job.
        with self.tracer.start_as_current_span(
            f"job {job.name}",
            context=context.Context(),
            kind=SpanKind.CONSUMER,
            links=links,
            attributes=attributes,
        ) as span:

            def ended(outcome: Outcome, seconds: float) -> None:
                result = (
                    "succeeded"
                    if outcome.succeeded
                    else "retried"
                    if outcome.retry_in is not None
                    else "failed"
                )
                span.set_attribute("vibetuner.job.outcome", result)
                if not outcome.succeeded:
                    span.set_status(Status(StatusCode.ERROR, outcome.error[:200]))
                self.runs.add(1, {JOB: job.name, "vibetuner.job.outcome": result})
                self.duration.record(seconds, {JOB: job.name})

            yield ended
