"""What an app exports over OTLP/HTTP, configured by the standard ``OTEL_*`` variables only,
read by a receiver the test starts: spans of a whole sign-in by emailed link, a job's
span linked to its request, and the request metrics, all in OTLP's protobuf."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.observability.receiver import Receiver, receiver
from tests.observability.served import served_app
from vibetuner.testing import Outbox, csrf_token_in

HTML = {"Accept": "text/html"}
SERVER, CLIENT, CONSUMER = 2, 3, 5  # Span.SpanKind in OTLP


def exported_spans(collector: Receiver) -> list[tuple[dict[str, Any], Any]]:
    """(resource attributes, span) for every span received."""
    found = []
    for body in collector.bodies("/v1/traces"):
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                found.extend((resource, span) for span in scope_spans.spans)
    return found


def attributes(span: Any) -> dict[str, Any]:
    values = {}
    for item in span.attributes:
        value = item.value
        values[item.key] = value.string_value or value.int_value
    return values


def tree(spans: list[Any], root: Any) -> list[str]:
    lines: list[str] = []

    def walk(span: Any, depth: int) -> None:
        took = (span.end_time_unix_nano - span.start_time_unix_nano) / 1e6
        on = attributes(span).get("db.collection.name") or attributes(span).get("http.route")
        lines.append(f"{'  ' * depth}{span.name} [{on}] ({took:.1f} ms)")
        for child in sorted(
            (s for s in spans if s.parent_span_id == span.span_id),
            key=lambda s: s.start_time_unix_nano,
        ):
            walk(child, depth + 1)

    walk(root, 0)
    return lines


def wait_for(check: Any, seconds: float = 20) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, "nothing arrived in time"
        time.sleep(0.1)


def test_a_sign_in_and_a_job_are_exported_as_otlp_traces_and_metrics(tmp_path: Path) -> None:
    with receiver() as collector:
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
            "OTEL_SERVICE_NAME": "served-app",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            "OTEL_METRIC_EXPORT_INTERVAL": "300",
        }
        with served_app(tmp_path, **env) as url:
            outbox = Outbox(tmp_path / "outbox")
            with httpx.Client(base_url=url, headers={"Origin": url}) as http:
                asked = http.post("/auth/magic-link", data={"email": "otel@example.com"})
                assert asked.status_code == 200, asked.text
                (link,) = [w for w in outbox.text(outbox.last).split() if "/magic-link/" in w]
                path = urlsplit(link).path
                # Refused before routing (cross-site): its span has the token's path too.
                refused = http.post(path, headers={"Origin": "https://evil.example"})
                assert refused.status_code == 403
                page = http.get(f"{path}?code=Secret-Code-123", headers=HTML)
                signed_in = http.post(
                    path, data={"csrf_token": csrf_token_in(page.text)}, headers=HTML
                )
                assert signed_in.status_code == 303, signed_in.text
                home = http.get("/", headers=HTML)
                queued = http.post("/queue", headers={"X-CSRF-Token": csrf_token_in(home.text)})
                assert queued.status_code == 200, queued.text

            def sign_in_and_job() -> Any:
                spans = exported_spans(collector)
                names = {span.name for _, span in spans}
                wanted = {"POST /auth/magic-link/{token}", "job served.noop"}
                return spans if wanted <= names else None

            spans = wait_for(sign_in_and_job)
            wait_for(lambda: collector.bodies("/v1/metrics"))
        token = path.rsplit("/", 1)[1]

    everything = [span for _, span in spans]
    assert {resource["service.name"] for resource, _ in spans} == {"served-app"}
    (sign_in,) = [
        s
        for s in everything
        if s.name == "POST /auth/magic-link/{token}"
        and attributes(s)["http.response.status_code"] == 303
    ]
    # (Its parent is the test's own httpx span: the W3C traceparent header is followed.)
    assert sign_in.kind == SERVER
    tags = attributes(sign_in)
    assert tags["http.route"] == "/auth/magic-link/{token}"
    assert tags["http.response.status_code"] == 303
    assert tags["enduser.id"] and tags["vibetuner.request_id"]
    # The sign-in's three requests as exported (pytest -s shows them).
    for request in sorted(everything, key=lambda s: s.start_time_unix_nano):
        if request.kind == SERVER and request.name.startswith(("POST /auth", "GET /auth")):
            in_trace = [s for s in everything if s.trace_id == request.trace_id]
            print("\n".join(tree(in_trace, request)))
    # The sign-in link's token (and a secret-looking query value) is in no exported span.
    refused_spans = [s for s in everything if attributes(s).get("http.response.status_code") == 403]
    assert refused_spans and attributes(refused_spans[0])["url.path"].endswith("/[redacted]")
    for span in everything:
        assert token not in span.name
        assert all(token not in str(v) for v in attributes(span).values()), span.name
        assert all("Secret-Code-123" not in str(v) for v in attributes(span).values())

    (queue_request,) = [s for s in everything if s.name == "POST /queue"]
    (job,) = [s for s in everything if s.name == "job served.noop"]
    assert job.kind == CONSUMER and job.trace_id != queue_request.trace_id
    (link,) = job.links
    assert (link.trace_id, link.span_id) == (queue_request.trace_id, queue_request.span_id)

    names = set()
    for body in collector.bodies("/v1/metrics"):
        for resource_metrics in ExportMetricsServiceRequest.FromString(body).resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                names.update(metric.name for metric in scope_metrics.metrics)
    assert {
        "http.server.request.duration",
        "http.server.active_requests",
        "vibetuner.job.runs",
        "vibetuner.job.duration",
    } <= names, names


def test_an_exporter_vibetuner_cannot_use_stops_the_server_with_one_line(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from tests.observability.served import APP, SRC

    (tmp_path / "pyproject.toml").write_text('[tool.vibetuner]\napp = "served_app:app"\n')
    (tmp_path / "served_app.py").write_text(APP)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(
        {
            "PYTHONPATH": f"{tmp_path}{os.pathsep}{SRC}",
            "ENVIRONMENT": "test",
            "DATA_DIR": str(tmp_path / "data"),
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
            "OTEL_TRACES_EXPORTER": "zipkin",
        }
    )
    result = subprocess.run(
        [sys.executable, "-m", "vibetuner.cli", "run", "prod", "--port", "1"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert "OTEL_TRACES_EXPORTER='zipkin' is not one of otlp, console, none" in result.stderr
    assert "Traceback" not in result.stderr
