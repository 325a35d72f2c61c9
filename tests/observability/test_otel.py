"""OpenTelemetry in process: spans and metrics as the SDK's in-memory exporters hold them.

Requests go over httpx's ASGI transport; OAuth calls go over real HTTP to the test
OpenID provider, S3 calls to moto's server, Redis calls to a real redis-server, and
MongoDB commands (in the wire run) through PyMongo to a MongoDB-wire server.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from opentelemetry.trace import SpanKind

from tests.blobs.conftest import s3_values
from tests.jobs import jobs_for_tests as jobs_module
from tests.jobs.conftest import jobs_app
from tests.jobs.redis_server import RedisServer
from tests.observability.conftest import Recorded, tree
from vibetuner.jobs.queue import find_queue
from vibetuner.testing import app_context

HTML = {"Accept": "text/html"}


def server_spans(recorded: Recorded) -> list[Any]:
    return [s for s in recorded.spans() if s.kind is SpanKind.SERVER]


async def test_a_request_is_one_server_span_with_route_status_request_id_and_user(
    signed_in_client: httpx.AsyncClient, user: Any, telemetry: Recorded
) -> None:
    response = await signed_in_client.get("/auth/me")
    assert response.status_code == 200
    (span,) = [s for s in server_spans(telemetry) if s.attributes.get("http.route") == "/auth/me"]
    assert span.name == "GET /auth/me"
    assert span.attributes["http.response.status_code"] == 200
    assert span.attributes["vibetuner.request_id"] == response.headers["X-Request-ID"]
    assert span.attributes["enduser.id"] == str(user.id)
    # No span per ASGI message (exclude_spans): nothing internal below the request.
    assert [s for s in telemetry.trace_of(span) if s.kind is SpanKind.INTERNAL] == []


async def test_request_duration_is_measured_by_route_and_status_and_in_flight_counted(
    client: httpx.AsyncClient, telemetry: Recorded
) -> None:
    assert (await client.get("/auth/me")).status_code == 401
    assert (await client.get("/blobs/0123456789abcdef01234567")).status_code in (401, 404)
    durations = telemetry.points("http.server.request.duration")
    by_route = {
        (p.attributes.get("http.route"), p.attributes.get("http.response.status_code")): p
        for p in durations
    }
    assert by_route[("/auth/me", 401)].count >= 1, list(by_route)
    assert any(route == "/blobs/{blob_id}" for route, _ in by_route), list(by_route)
    in_flight = telemetry.points("http.server.active_requests")
    assert in_flight and all(p.value == 0 for p in in_flight)  # none left open


@pytest.fixture
async def jobs_client(vibetuner_settings: Any, job_log: Any) -> AsyncIterator[Any]:
    application = jobs_app(vibetuner_settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield application, http


async def test_a_job_is_its_own_trace_linked_to_the_request_that_queued_it(
    jobs_client: Any, telemetry: Recorded
) -> None:
    application, http = jobs_client
    queued = await http.post("/queue/7")
    assert queued.status_code == 200
    await find_queue(app_context(application)).drain()
    (request_span,) = [s for s in server_spans(telemetry) if s.name == "POST /queue/{n}"]
    (job_span,) = [s for s in telemetry.spans() if s.name == "job tests.record"]
    assert job_span.kind is SpanKind.CONSUMER
    assert job_span.parent is None  # a trace of its own ...
    (link,) = job_span.links  # ... linked to the request's span
    assert link.context.trace_id == request_span.context.trace_id
    assert link.context.span_id == request_span.context.span_id
    assert job_span.attributes["vibetuner.request_id"] == queued.headers["X-Request-ID"]
    assert job_span.attributes["vibetuner.job.outcome"] == "succeeded"


async def test_job_runs_and_failures_are_counted_and_timed(
    jobs_client: Any, telemetry: Recorded
) -> None:
    application, _ = jobs_client
    queue = find_queue(app_context(application))
    await jobs_module.always_fails.enqueue(app_context(application), "no")
    await jobs_module.record.enqueue(app_context(application), 1)
    await queue.drain()
    runs = {
        (p.attributes["vibetuner.job.name"], p.attributes["vibetuner.job.outcome"]): p.value
        for p in telemetry.points("vibetuner.job.runs")
    }
    # always_fails has two attempts: one retried, then failed for good.
    assert runs[("tests.always_fails", "retried")] >= 1
    assert runs[("tests.always_fails", "failed")] >= 1
    assert runs[("tests.record", "succeeded")] >= 1
    failed = [s for s in telemetry.spans() if s.name == "job tests.always_fails"]
    assert [s.status.status_code.name for s in failed] == ["ERROR", "ERROR"]
    timed = [p for p in telemetry.points("vibetuner.job.duration")]
    assert any(p.attributes["vibetuner.job.name"] == "tests.record" for p in timed)


async def test_the_queue_depth_is_a_gauge(jobs_client: Any, telemetry: Recorded) -> None:
    application, _ = jobs_client
    queue = find_queue(app_context(application))
    await jobs_module.long_job.enqueue(app_context(application), 1, 30)
    for _ in range(100):  # the feature reads the depth every few seconds; first at once
        points = telemetry.points("vibetuner.job.queue.depth")
        if any(p.value == 1 for p in points):
            break
        await asyncio.sleep(0.1)
    else:
        from vibetuner.observability import feature

        pytest.fail(f"no depth of 1 within {feature.DEPTH_EVERY}s: {points}")
    for task in list(queue._running):
        task.cancel()


class TestOAuth:
    """A sign-in with the OpenID provider: the app's calls to it are client spans."""

    @pytest.fixture
    def vibetuner_settings(self, vibetuner_settings: Any, oidc_provider: Any) -> Any:
        values = {
            **vibetuner_settings.model_dump(),
            "oidc_providers": [oidc_provider.settings()],
            "token_encryption_key": Fernet.generate_key().decode(),
        }
        return type(vibetuner_settings)(_env_file=None, **values)

    async def test_the_provider_calls_are_spans_of_the_callback_request(
        self,
        client: httpx.AsyncClient,
        provider_browser: httpx.AsyncClient,
        telemetry: Recorded,
    ) -> None:
        from tests.auth.test_oauth import sign_in

        response = await sign_in(client, provider_browser, "alice")
        assert response.status_code == 303
        (callback,) = [
            s for s in server_spans(telemetry) if s.name == "GET /auth/oauth/{provider}/callback"
        ]
        spans = telemetry.trace_of(callback)
        # The app's own calls to the provider: client spans inside the callback request.
        calls = [
            s
            for s in spans
            if s.kind is SpanKind.CLIENT
            and s.parent is not None
            and s.parent.span_id == callback.context.span_id
            and "http.request.method" in s.attributes
        ]
        assert {s.attributes["http.request.method"] for s in calls} >= {"POST", "GET"}, tree(spans)
        urls = " ".join(str(s.attributes.get("url.full")) for s in calls)
        assert "/token" in urls, tree(spans)
        for span in calls:
            # The authorization code and tokens stay out of the span.
            assert "code=" not in str(span.attributes.get("url.full"))


class TestS3:
    @pytest.fixture
    def vibetuner_settings(self, vibetuner_settings: Any, moto_endpoint: str) -> Any:
        return vibetuner_settings.model_copy(update=s3_values(moto_endpoint))

    async def test_an_upload_to_s3_is_a_span_per_call_inside_the_request(
        self, signed_in_client: httpx.AsyncClient, telemetry: Recorded
    ) -> None:
        page = await signed_in_client.get("/", headers=HTML)
        from vibetuner.testing import csrf_token_in

        token = csrf_token_in(page.text)
        uploaded = await signed_in_client.post(
            "/blobs",
            files={"file": ("notes.txt", b"hello", "text/plain")},
            headers={"X-CSRF-Token": token},
        )
        assert uploaded.status_code == 201, uploaded.text
        (request,) = [s for s in server_spans(telemetry) if s.name == "POST /blobs"]
        spans = telemetry.trace_of(request)
        s3 = [s for s in spans if s.attributes.get("rpc.service") == "S3"]
        assert {s.attributes["rpc.method"] for s in s3} & {"PutObject", "CreateMultipartUpload"}, (
            tree(spans)
        )
        assert all(s.kind is SpanKind.CLIENT for s in s3)


class TestRedis:
    @pytest.fixture
    def vibetuner_settings(self, vibetuner_settings: Any, tmp_path: Any) -> Any:
        from pydantic import SecretStr

        self.server = RedisServer(tmp_path)
        self.server.start()
        return vibetuner_settings.model_copy(update={"redis_url": SecretStr(self.server.url)})

    async def test_queueing_on_redis_makes_redis_spans_inside_the_request(
        self,
        vibetuner_settings: Any,
        job_log: Any,
        telemetry: Recorded,
    ) -> None:
        application = jobs_app(vibetuner_settings)
        ready, done = asyncio.Event(), asyncio.Event()

        async def serve() -> None:  # streaq's connection is closed by the task that opened it
            async with application.router.lifespan_context(application):
                ready.set()
                await done.wait()

        server = asyncio.create_task(serve())
        try:
            await asyncio.wait_for(ready.wait(), 30)
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                queued = await http.post("/queue/3")
            assert queued.status_code == 200, queued.text
        finally:
            done.set()
            await server
            self.server.stop()
        (request,) = [s for s in server_spans(telemetry) if s.name == "POST /queue/{n}"]
        spans = telemetry.trace_of(request)
        redis_spans = [s for s in spans if s.attributes.get("db.system.name") == "redis"]
        assert redis_spans, tree(spans)
        assert all(s.kind is SpanKind.CLIENT for s in redis_spans)


@pytest.mark.parametrize("mongo_backend", ["mongodb"], indirect=True)
async def test_mongodb_commands_are_spans_and_their_latency_is_measured(
    signed_in_client: httpx.AsyncClient, telemetry: Recorded
) -> None:
    assert (await signed_in_client.get("/auth/me")).status_code == 200
    (request,) = [s for s in server_spans(telemetry) if s.name == "GET /auth/me"]
    spans = telemetry.trace_of(request)
    commands = [s for s in spans if s.attributes.get("db.system.name") == "mongodb"]
    assert commands, tree(spans)
    assert all(s.parent is not None for s in commands), tree(spans)
    # (The same metric carries Redis's latency, from coredis, under db.system.name=redis.)
    latency = [
        p
        for p in telemetry.points("db.client.operation.duration")
        if p.attributes.get("db.system.name") == "mongodb"
    ]
    names = {p.attributes["db.operation.name"] for p in latency}
    assert {"find", "aggregate"} & names, names
    assert all(p.count >= 1 and p.sum > 0 for p in latency)
