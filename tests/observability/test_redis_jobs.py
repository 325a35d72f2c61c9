"""A job queued to Redis by a request and run by a ``vibetuner run worker`` process: its
span, exported by the worker over OTLP, is linked to the request's span in the web app."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.trace import SpanKind

from tests.jobs.test_redis import client_app, redis, start_worker, worker_project  # noqa: F401
from tests.observability.conftest import Recorded
from tests.observability.receiver import receiver
from vibetuner.testing import free_port


async def test_a_job_run_by_a_worker_is_linked_to_the_request_that_queued_it(
    client_app: Any,  # noqa: F811
    start_worker: Any,  # noqa: F811
    telemetry: Recorded,
) -> None:
    metrics_port = free_port()
    with receiver() as collector:
        start_worker(
            extra_env={
                "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
                "OTEL_SERVICE_NAME": "worker",
                "OTEL_BSP_SCHEDULE_DELAY": "100",
                "METRICS_PORT": str(metrics_port),
            }
        )
        transport = httpx.ASGITransport(app=client_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            queued = await http.post("/queue/5")
        assert queued.status_code == 200, queued.text

        deadline = time.monotonic() + 60
        job = None
        while job is None:
            for body in collector.bodies("/v1/traces"):
                for resource_spans in ExportTraceServiceRequest.FromString(body).resource_spans:
                    for scope_spans in resource_spans.scope_spans:
                        for span in scope_spans.spans:
                            if span.name == "job tests.record":
                                job = span
            assert time.monotonic() < deadline, "the worker exported no job span"
            await asyncio.sleep(0.1)

        # The worker's own polling of Redis (several calls a second) is not exported:
        # only spans of requests and jobs are.
        await asyncio.sleep(2)
        names = [
            (span.name, bool(span.parent_span_id))
            for body in collector.bodies("/v1/traces")
            for resource_spans in ExportTraceServiceRequest.FromString(body).resource_spans
            for scope_spans in resource_spans.scope_spans
            for span in scope_spans.spans
        ]
        assert [name for name, has_parent in names if not has_parent] == ["job tests.record"]

        # The worker serves its own metrics (jobs run there, not in the web process).
        async with httpx.AsyncClient() as http:
            scraped = (await http.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
        runs = [line for line in scraped.splitlines() if line.startswith("vibetuner_job_runs")]
        assert any('"tests.record"' in line and '"succeeded"' in line for line in runs), runs

    (request,) = [
        s for s in telemetry.spans() if s.kind is SpanKind.SERVER and s.name == "POST /queue/{n}"
    ]
    (link,) = job.links
    assert link.trace_id == request.context.trace_id.to_bytes(16, "big")
    assert link.span_id == request.context.span_id.to_bytes(8, "big")
    assert job.trace_id != link.trace_id  # a trace of its own
    tags = {a.key: a.value.string_value or a.value.int_value for a in job.attributes}
    assert tags["vibetuner.request_id"] == queued.headers["X-Request-ID"]
    assert tags["vibetuner.job.outcome"] == "succeeded"
