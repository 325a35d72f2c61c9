"""A worker in operation: its heartbeat, `vibetuner jobs health`, and SIGTERM mid-job."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.jobs import jobs_for_tests as work
from tests.jobs.conftest import lines
from tests.jobs.redis_server import RedisServer
from tests.jobs.test_redis import (  # noqa: F401 -- fixtures
    SESSION_KEY,
    client_app,
    redis,
    start_worker,
    wait_for,
    worker_project,
)
from vibetuner import app_context
from vibetuner.jobs.heartbeat import file_path, read_beats


def jobs_health(project: Path, redis_url: str, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MONGODB_", "REDIS_", "JOBS_"))}
    env.update(
        {
            "REDIS_URL": redis_url,
            "SESSION_KEY": SESSION_KEY,
            "ENVIRONMENT": "test",
            "JOBS_HEARTBEAT_TIMEOUT": str(timeout),
            "COLUMNS": "200",
        }
    )
    return subprocess.run(
        [sys.executable, "-m", "vibetuner.cli", "jobs", "health"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def until_health(project: Path, redis_url: str, code: int, seconds: float = 30) -> str:
    """Run `jobs health` until it exits with ``code``; its one line."""
    deadline = time.monotonic() + seconds
    while True:
        result = await asyncio.to_thread(jobs_health, project, redis_url, 2)
        if result.returncode == code:
            (line,) = result.stdout.strip().splitlines()
            return line
        assert time.monotonic() < deadline, (result.returncode, result.stdout, result.stderr)
        await asyncio.sleep(0.3)


async def test_jobs_health_follows_the_workers_heartbeat(
    start_worker: Any,  # noqa: F811
    worker_project: Path,  # noqa: F811
    redis: RedisServer,  # noqa: F811
) -> None:
    none = jobs_health(worker_project, redis.url, 2)
    assert none.returncode == 1 and none.stdout.strip() == "unhealthy: no worker has ever beaten"

    worker = start_worker(extra_env={"JOBS_HEARTBEAT_TIMEOUT": "2"})
    assert (await until_health(worker_project, redis.url, 0)).startswith(
        "ok: 1 worker(s) beat within 2 s"
    )

    # A wedged worker (its process frozen, as a blocked event loop would be) stops beating.
    os.kill(worker.pid, signal.SIGSTOP)
    try:
        line = await until_health(worker_project, redis.url, 1)
        assert line.startswith("unhealthy: no worker beat within 2 s")
    finally:
        os.kill(worker.pid, signal.SIGCONT)
    await until_health(worker_project, redis.url, 0)

    # A worker that stops cleanly takes its beat with it.
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0
    assert (await until_health(worker_project, redis.url, 1)).startswith("unhealthy")


async def test_jobs_health_says_so_when_redis_is_down(
    worker_project: Path,  # noqa: F811
    redis: RedisServer,  # noqa: F811
) -> None:
    redis.stop()
    result = jobs_health(worker_project, redis.url, 2)
    assert result.returncode == 1
    assert result.stdout.strip().startswith("unhealthy: cannot reach Redis")
    assert "Traceback" not in result.stdout + result.stderr


async def test_sigterm_lets_a_running_job_finish_within_the_grace(
    client_app: Any,  # noqa: F811
    start_worker: Any,  # noqa: F811
    job_log: Path,
) -> None:
    worker = start_worker(extra_env={"JOBS_SHUTDOWN_GRACE": "15"})
    await work.long_job.enqueue(app_context(client_app), 1, 2)
    await wait_for(lambda: bool(lines(job_log, "start")))
    worker.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(worker.wait, 30) == 0
    assert lines(job_log, "end") == [["end", "1", str(worker.pid)]]


async def test_a_job_still_running_after_the_grace_runs_again_elsewhere(
    client_app: Any,  # noqa: F811
    start_worker: Any,  # noqa: F811
    job_log: Path,
) -> None:
    stopping = start_worker(idle_timeout=1, extra_env={"JOBS_SHUTDOWN_GRACE": "1"})
    await work.long_job.enqueue(app_context(client_app), 2, 6)
    await wait_for(lambda: bool(lines(job_log, "start")))
    started = time.monotonic()
    stopping.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(stopping.wait, 30) == 0
    assert time.monotonic() - started < 5  # the grace, not the job's 6 s
    assert lines(job_log, "end") == []

    # Not lost: handed back to the queue, another worker runs it to the end.
    survivor = start_worker(idle_timeout=1)
    await wait_for(lambda: bool(lines(job_log, "end")), seconds=60)
    assert [words[2] for words in lines(job_log, "start")] == [
        str(stopping.pid),
        str(survivor.pid),
    ]
    assert lines(job_log, "end") == [["end", "2", str(survivor.pid)]]


async def test_the_in_process_runner_beats_into_the_data_dir(app: Any) -> None:

    settings = app_context(app).settings
    beats = await read_beats(settings)
    assert beats.fresh == 1 and beats.latest_age is not None and beats.latest_age < 5
    assert file_path(settings).is_file()


def test_jobs_health_without_redis_reads_the_web_process_beat(
    worker_project: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    from vibetuner.testing import free_port

    env = {k: v for k, v in os.environ.items() if not k.startswith(("MONGODB_", "REDIS_", "JOBS_"))}
    env.update(
        {
            "SESSION_KEY": SESSION_KEY,
            "ENVIRONMENT": "test",
            "DATA_DIR": str(tmp_path / "data"),
            "JOBS_HEARTBEAT_TIMEOUT": "2",
        }
    )

    def health() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "vibetuner.cli", "jobs", "health"],
            cwd=worker_project,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    port = free_port()
    web = subprocess.Popen(
        [sys.executable, "-m", "vibetuner.cli", "run", "prod", "--host", "127.0.0.1"]
        + ["--port", str(port)],
        cwd=worker_project,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while (answer := health()).returncode != 0:
            assert web.poll() is None and time.monotonic() < deadline, answer.stdout
            time.sleep(0.3)
        assert answer.stdout.startswith("ok: 1 in-process job runner(s) beat within 2 s")
    finally:
        web.terminate()
        web.wait(timeout=30)
    time.sleep(2.5)
    stale = health()
    assert stale.returncode == 1
    assert stale.stdout.startswith("unhealthy: no in-process job runner beat within 2 s")
