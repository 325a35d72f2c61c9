"""Background jobs on Redis: vibetuner's queue against streaq used directly, same run.

Both sides use the same redis-server (started here on 127.0.0.1), one worker process,
and a job that only notes when it started (CLOCK_MONOTONIC, shared by processes).

1. enqueue throughput (jobs queued per second, one after the other)   target ratio >= 0.9
2. enqueue-to-start latency, p99 (a job queued every 5 ms)            target ratio <= 1.2
   (p50 is printed too)

Prints medians over the rounds and ratios; exits 1 when a target is missed.
Usage: python bench/jobs.py [--jobs N] [--rounds N]
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

from _common import free_port, report, stop

LOG_PATH: str = ""


def note_start(n: int) -> None:
    """Record when job ``n`` started (CLOCK_MONOTONIC is shared by processes on Linux)."""
    with open(LOG_PATH, "a") as log:
        log.write(f"{n} {time.monotonic()}\n")


def started(path: str) -> dict[int, float]:
    found: dict[int, float] = {}
    with open(path) as log:
        for line in log:
            n, moment = line.split()
            found[int(n)] = float(moment)
    return found


def truncate(path: str) -> None:
    open(path, "w").close()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def measure(
    enqueue: Callable[[int], Awaitable[Any]], count: int, log: str
) -> tuple[float, float, float]:
    """(jobs queued per second, p50 and p99 enqueue-to-start latency in ms)."""
    began = time.perf_counter()
    for n in range(count):
        await enqueue(n)
    rate = count / (time.perf_counter() - began)
    await until(lambda: len(started(log)) >= count)

    truncate(log)
    queued: dict[int, float] = {}
    for n in range(count // 4):
        queued[n] = time.monotonic()
        await enqueue(n)
        await asyncio.sleep(0.005)
    await until(lambda: len(started(log)) >= count // 4)
    moments = started(log)
    latencies = [(moments[n] - queued[n]) * 1000 for n in queued]
    return rate, percentile(latencies, 0.5), percentile(latencies, 0.99)


async def until(check: Callable[[], bool], seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit("jobs did not all run in time")
        await asyncio.sleep(0.02)


def streaq_worker(url: str) -> Any:
    """streaq on its own: a worker and its task."""
    from streaq import Worker

    worker = Worker(
        redis_url=url, queue_name="direct", handle_signals=True, signing_secret="x" * 64
    )

    @worker.task(name="bench.direct")
    async def job(n: int) -> None:
        note_start(n)

    return worker, job


def vibetuner_app(url: str, key: str) -> Any:
    """The same through vibetuner: ``@task`` and ``JobsFeature``."""
    from pydantic import SecretStr

    from vibetuner import JobsFeature, create_app
    from vibetuner.config import Settings
    from vibetuner.jobs import task

    @task(name="bench.vibetuner", max_attempts=1)
    async def job(context: Any, n: int) -> None:
        note_start(n)

    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        environment="test",
        redis_url=SecretStr(url),
        jobs_queue="vibetuner",
        session_key=SecretStr(key),
    )
    return create_app(settings=settings, features=[JobsFeature([job])]), job


async def run_worker(kind: str, url: str, key: str) -> None:
    """The one worker, in its own process."""
    if kind == "direct":
        worker, _job = streaq_worker(url)
        await worker.run_async()
        return
    from vibetuner.context import running
    from vibetuner.jobs.feature import JobsFeature
    from vibetuner.web.context import app_context

    app, _job = vibetuner_app(url, key)
    context = app_context(app)
    feature = next(f for f in context.features if isinstance(f, JobsFeature))
    feature.worker_mode = True
    async with running(context):  # what `vibetuner run worker` starts: no web lifespan
        await feature.queue.run_worker()


async def enqueue_side(
    kind: str, url: str, key: str, count: int, log: str
) -> tuple[float, float, float]:
    if kind == "direct":
        worker, job = streaq_worker(url)
        async with worker:
            return await measure(lambda n: job.enqueue(n), count, log)
    from vibetuner.web.context import app_context

    app, job = vibetuner_app(url, key)
    context = app_context(app)
    async with app.router.lifespan_context(app):
        return await measure(lambda n: job.enqueue(context, n), count, log)


def one_round(kind: str, url: str, count: int, directory: str) -> tuple[float, float, float]:
    key = secrets.token_urlsafe(48)
    log = f"{directory}/{kind}.log"
    open(log, "w").close()
    worker = subprocess.Popen(
        [sys.executable, __file__, "--worker", kind, "--redis", url, "--key", key, "--log", log],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(1.5)  # the worker connects
        global LOG_PATH
        LOG_PATH = log
        return asyncio.run(enqueue_side(kind, url, key, count, log))
    finally:
        stop(worker)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--worker", choices=["direct", "vibetuner"], help=argparse.SUPPRESS)
    parser.add_argument("--redis", help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    parser.add_argument("--log", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        global LOG_PATH
        LOG_PATH = args.log
        asyncio.run(run_worker(args.worker, args.redis, args.key))
        return
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server is not installed")
    port = free_port()
    with tempfile.TemporaryDirectory() as data:
        server = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", data],
            stdout=subprocess.DEVNULL,
        )
        try:
            time.sleep(0.5)
            url = f"redis://127.0.0.1:{port}/0"
            ours: list[tuple[float, float, float]] = []
            base: list[tuple[float, float, float]] = []
            for _ in range(args.rounds):  # alternated, so drift hits both alike
                base.append(one_round("direct", url, args.jobs, data))
                ours.append(one_round("vibetuner", url, args.jobs, data))
        finally:
            stop(server)

    def median(rows: list[tuple[float, float, float]], index: int) -> float:
        return statistics.median(row[index] for row in rows)

    print(f"{args.jobs} jobs x {args.rounds} rounds, one worker process (concurrency 16)")
    ok = report(
        [
            ("enqueue throughput (jobs/s)", median(ours, 0), median(base, 0), 0.9, ">="),
            ("enqueue-to-start p50 (ms)", median(ours, 1), median(base, 1), 99.0, "<="),
            ("enqueue-to-start p99 (ms)", median(ours, 2), median(base, 2), 1.2, "<="),
        ]
    )
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
