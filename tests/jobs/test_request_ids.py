"""A job carries the id of the request that queued it, in its log lines and to its own jobs."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.helpers import capture_json_logs
from tests.jobs.test_redis import client_app, redis, wait_for  # noqa: F401 -- fixtures


async def test_in_process_jobs_log_under_the_request_id(app: Any, jobs: Any) -> None:
    transport = httpx.ASGITransport(app=app)
    with capture_json_logs() as logs:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            answer = await http.post("/chatty/7")
        await asyncio.wait_for(jobs.drain(), 10)
    request_id = answer.headers["X-Request-ID"]
    assert [(e.name, e.request_id) for e in jobs.enqueued] == [
        ("tests.chatty", request_id),
        ("tests.record", request_id),  # queued by the job: the same id
    ]
    (said,) = [e for e in logs.entries() if e["message"] == "chatty job 7 says hello"]
    assert said["request_id"] == request_id and said["job"] == "tests.chatty"


async def test_a_job_queued_outside_a_request_gets_an_id_of_its_own(jobs: Any) -> None:
    from tests.jobs import jobs_for_tests as work

    with capture_json_logs() as logs:
        await work.chatty.enqueue(jobs.context, 1)
        await asyncio.wait_for(jobs.drain(), 10)
    (said,) = [e for e in logs.entries() if e["message"] == "chatty job 1 says hello"]
    assert len(said["request_id"]) == 32
    assert jobs.enqueued[1].request_id == said["request_id"]


async def test_on_redis_the_worker_logs_under_the_request_id(
    client_app: Any,  # noqa: F811
) -> None:
    from tests.jobs.conftest import TEST_JOBS
    from vibetuner.jobs.redis_queue import RedisQueue
    from vibetuner.web.context import app_context

    worker = RedisQueue(app_context(client_app), TEST_JOBS, worker=False)
    running = asyncio.create_task(worker.run_worker())
    try:
        with capture_json_logs() as logs:
            transport = httpx.ASGITransport(app=client_app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
                answer = await http.post("/chatty/9")
            await wait_for(
                lambda: any(e["message"] == "chatty job 9 says hello" for e in logs.entries()),
                seconds=30,
            )
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    (said,) = [e for e in logs.entries() if e["message"] == "chatty job 9 says hello"]
    assert said["request_id"] == answer.headers["X-Request-ID"]
    assert said["job"] == "tests.chatty"
