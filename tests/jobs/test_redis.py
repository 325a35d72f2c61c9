"""Jobs on a real redis-server, run by ``vibetuner run worker`` processes.

Delivery is at least once: every job runs, and one whose worker is killed runs again
on another worker after ``JOBS_IDLE_TIMEOUT``.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import stop_process
from tests.jobs import jobs_for_tests as work
from tests.jobs.conftest import TEST_JOBS, lines, router
from tests.jobs.redis_server import RedisServer
from vibetuner import JobsFeature, app_context, create_app
from vibetuner.models.failed_job import FailedJob

REPO = Path(__file__).resolve().parents[2]
SESSION_KEY = secrets.token_urlsafe(48)
WORKER_APP = """
import sys
sys.path.insert(0, {repo!r})
from tests.jobs.conftest import TEST_JOBS
from vibetuner import JobsFeature, app_context, create_app

app = create_app(features=[JobsFeature(TEST_JOBS)])
"""
# What `vibetuner run worker` imports: the jobs and a context, never the app module.
WORKER_CONTEXT = """
import os, sys
sys.path.insert(0, {repo!r})
from tests.jobs import jobs_for_tests as work
from vibetuner import JobsFeature, create_context

jobs = list(work.TEST_JOBS) + ([work.every_second] if os.environ.get("WITH_CRON") else [])


def build_context():
    return create_context(features=[JobsFeature(jobs)])
"""


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def worker_project(tmp_path: Path) -> Path:
    root = tmp_path / "workerapp"
    root.mkdir()
    (root / "pyproject.toml").write_text(
        '[tool.vibetuner]\napp = "jobapp:app"\nworker = "jobworker:build_context"\n'
    )
    (root / "jobapp.py").write_text(WORKER_APP.format(repo=str(REPO)))
    (root / "jobworker.py").write_text(WORKER_CONTEXT.format(repo=str(REPO)))
    return root


@pytest.fixture
def start_worker(
    worker_project: Path, redis: RedisServer, job_log: Path
) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(
        *,
        cron: bool = False,
        idle_timeout: float = 60,
        dev_db: Path | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> subprocess.Popen[bytes]:
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("MONGODB_", "REDIS_", "JOBS_"))
        }
        env.update(
            {
                "REDIS_URL": redis.url,
                "SESSION_KEY": SESSION_KEY,
                "ENVIRONMENT": "development" if dev_db else "test",
                "DATA_DIR": str(dev_db or worker_project / "data"),
                "JOBS_IDLE_TIMEOUT": str(idle_timeout),
                "JOBS_SHUTDOWN_GRACE": "2",
                "VIBETUNER_TEST_JOB_LOG": str(job_log),
                "LOG_LEVEL": "WARNING",
            }
        )
        if cron:
            env["WITH_CRON"] = "1"
        env.update(extra_env or {})
        log = (worker_project / f"worker-{len(started)}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "vibetuner.cli", "run", "worker", "--concurrency", "8"],
            cwd=worker_project,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        started.append(process)
        return process

    try:
        yield start
    finally:
        for process in started:
            stop_process(process)


@pytest.fixture
async def client_app(vibetuner_settings: Any, redis: RedisServer) -> AsyncIterator[Any]:
    """An app that queues to the Redis (a web process), with the route that queues."""
    settings = vibetuner_settings.model_copy(
        update={"redis_url": _secret(redis.url), "session_key": _secret(SESSION_KEY)}
    )
    application = create_app(settings=settings, features=[JobsFeature(TEST_JOBS)], routers=[router])
    # The lifespan runs in a task of its own, as a server runs it: streaq's connection
    # must be closed by the task that opened it.
    ready, done = asyncio.Event(), asyncio.Event()

    async def serve() -> None:
        async with application.router.lifespan_context(application):
            ready.set()
            await done.wait()

    server = asyncio.create_task(serve())
    await asyncio.wait(
        [server, asyncio.create_task(ready.wait())], return_when=asyncio.FIRST_COMPLETED
    )
    if server.done():
        server.result()
    try:
        yield application
    finally:
        done.set()
        await server


def _secret(value: str) -> Any:
    from pydantic import SecretStr

    return SecretStr(value)


async def wait_for(check: Callable[[], bool], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def test_many_jobs_over_two_workers_run_exactly_once(
    client_app: Any, start_worker: Any, job_log: Path
) -> None:
    first, second = start_worker(), start_worker()
    for n in range(500):
        await work.record.enqueue(app_context(client_app), n)
    await wait_for(lambda: len(lines(job_log, "ran")) >= 500)
    await asyncio.sleep(1)  # a duplicate would show up now
    ran = lines(job_log, "ran")
    assert sorted(int(words[1]) for words in ran) == list(range(500))
    assert {words[2] for words in ran} == {str(first.pid), str(second.pid)}


async def test_a_killed_workers_job_runs_again_on_another(
    client_app: Any, start_worker: Any, job_log: Path
) -> None:
    doomed = start_worker(idle_timeout=1)
    await work.long_job.enqueue(app_context(client_app), 1, 2)
    await wait_for(lambda: bool(lines(job_log, "start")))
    os.kill(doomed.pid, signal.SIGKILL)
    doomed.wait()
    survivor = start_worker(idle_timeout=1)
    await wait_for(lambda: bool(lines(job_log, "end")), seconds=60)
    starts = lines(job_log, "start")
    assert [words[2] for words in starts] == [str(doomed.pid), str(survivor.pid)]
    assert lines(job_log, "end") == [["end", "1", str(survivor.pid)]]


async def test_a_periodic_job_runs_once_per_tick_with_two_workers(
    start_worker: Any, job_log: Path
) -> None:
    start_worker(cron=True)
    start_worker(cron=True)
    await wait_for(lambda: len(lines(job_log, "tick")) >= 4, seconds=60)
    seconds = [int(words[1]) for words in lines(job_log, "tick")]
    assert len(seconds) == len(set(seconds)), seconds  # never twice for one tick


async def test_retries_back_off_on_redis_too(client_app: Any, job_log: Path) -> None:

    queue = app_context(client_app).feature(JobsFeature).queue
    worker_task = asyncio.create_task(_run_worker_here(client_app))
    try:
        await work.flaky.enqueue(app_context(client_app), 3)
        await wait_for(lambda: len(lines(job_log, "flaky")) >= 3, seconds=30)
    finally:
        worker_task.cancel()
        await asyncio.gather(worker_task, return_exceptions=True)
    times = [float(words[1]) for words in lines(job_log, "flaky")]
    assert times[1] - times[0] >= 0.18 and times[2] - times[1] >= 0.38
    assert queue.kind == "redis"


async def _run_worker_here(application: Any) -> None:
    """A streaq worker for the app, in this process (it shares the test's database)."""
    from vibetuner.jobs.redis_queue import RedisQueue

    context = app_context(application)
    queue = RedisQueue(context, TEST_JOBS, worker=False)
    await queue.run_worker()


async def test_a_request_queues_and_a_worker_runs_it(
    client_app: Any, start_worker: Any, job_log: Path
) -> None:
    start_worker()
    transport = httpx.ASGITransport(app=client_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        answer = await http.post("/queue/42")
    assert answer.status_code == 200 and answer.json()["id"]
    await wait_for(lambda: bool(lines(job_log, "ran")))
    assert lines(job_log, "ran")[0][1] == "42"


async def test_a_broker_that_goes_away_gives_503_and_workers_reconnect(
    client_app: Any, start_worker: Any, redis: RedisServer, job_log: Path
) -> None:
    worker = start_worker()
    await work.record.enqueue(app_context(client_app), 1)
    await wait_for(lambda: len(lines(job_log, "ran")) == 1)

    redis.stop()
    transport = httpx.ASGITransport(app=client_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        refused = await http.post("/queue/2", headers={"Accept": "application/json"})
        assert refused.status_code == 503
        assert refused.json()["code"] == "job_queue_unavailable"
        health = await http.get("/health")
        assert health.json()["jobs"] == "unreachable" and health.json()["status"] == "degraded"

        await asyncio.sleep(2)
        redis.start()  # the same port, the same data
        deadline = time.monotonic() + 30
        while (await http.post("/queue/3")).status_code != 200:  # the web side reconnects
            assert time.monotonic() < deadline, "the web process did not reconnect"
            await asyncio.sleep(0.5)
        assert (await http.get("/health")).json()["jobs"] == "ok"
    await wait_for(lambda: any(words[1] == "3" for words in lines(job_log, "ran")), seconds=60)
    assert worker.poll() is None, "the worker stopped"  # it rode it out


async def test_dead_letter_then_jobs_retry_from_the_command_line(
    start_worker: Any, client_app: Any, worker_project: Path, job_log: Path, redis: RedisServer
) -> None:
    dev_db = worker_project / "devdata"
    worker = start_worker(dev_db=dev_db)
    await work.always_fails.enqueue(app_context(client_app), "no disk")
    await wait_for(lambda: len(lines(job_log, "failing")) >= 2, seconds=60)
    await asyncio.sleep(0.5)
    stop_process(worker)  # saves the development database

    env = {k: v for k, v in os.environ.items() if not k.startswith(("MONGODB_", "REDIS_", "JOBS_"))}
    env.update(
        {
            "REDIS_URL": redis.url,
            "SESSION_KEY": SESSION_KEY,
            "ENVIRONMENT": "development",
            "DATA_DIR": str(dev_db),
            "VIBETUNER_TEST_JOB_LOG": str(job_log),
            "COLUMNS": "200",  # a wide table, one line per job
        }
    )

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "vibetuner.cli", *args],
            cwd=worker_project,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    listed = cli("jobs", "list")
    assert listed.returncode == 0, listed.stderr
    assert "tests.always_fails" in listed.stdout and "no disk" in listed.stdout

    job_log.with_suffix(".fixed").write_text("")
    retried = cli("jobs", "retry", "--all")
    assert retried.returncode == 0, retried.stderr
    assert "Queued tests.always_fails" in retried.stdout
    start_worker(dev_db=dev_db)
    await wait_for(lambda: bool(lines(job_log, "fixed")), seconds=60)
    assert "No failed jobs." in cli("jobs", "list").stdout
    assert await FailedJob.count() == 0  # (the test's own database saw none of this)


async def test_the_worker_starts_what_jobs_need_and_builds_no_web_app(
    client_app: Any, start_worker: Any, job_log: Path
) -> None:
    start_worker()
    await work.what_is_loaded.enqueue(app_context(client_app))
    await wait_for(lambda: bool(lines(job_log, "loaded")))
    [[_, web_modules, routes, features]] = lines(job_log, "loaded")
    assert web_modules == "-"  # no create_app, admin, sign-in pages, blob routes, health
    assert routes == "0"  # not one route object in the worker process
    assert features == "jobs"  # the worker context's features, entered; nothing else


def test_the_worker_needs_a_worker_entry(worker_project: Path, redis: RedisServer) -> None:
    (worker_project / "pyproject.toml").write_text('[tool.vibetuner]\napp = "jobapp:app"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MONGODB_", "REDIS_"))}
    env.update({"REDIS_URL": redis.url, "SESSION_KEY": SESSION_KEY, "ENVIRONMENT": "test"})
    result = subprocess.run(
        [sys.executable, "-m", "vibetuner.cli", "run", "worker"],
        cwd=worker_project,
        env={**env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "names no worker" in result.stderr and "Traceback" not in result.stderr
