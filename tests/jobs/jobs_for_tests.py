"""Jobs the job tests queue; what they did is written to ``LOG`` (one line per event)."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import sys
import time
from pathlib import Path

from vibetuner import AppContext
from vibetuner.jobs import cron, task
from vibetuner.models import UserModel

LOG = Path(os.environ.get("VIBETUNER_TEST_JOB_LOG", "/dev/null"))


def note(*words: object) -> None:
    """Append one line (atomic for short lines with O_APPEND) to the job log."""
    line = " ".join(str(w) for w in words) + "\n"
    with LOG.open("a") as log:
        log.write(line)


@task(name="tests.record")
async def record(context: AppContext, n: int) -> None:
    note("ran", n, os.getpid())


@task(name="tests.flaky", max_attempts=3, backoff=0.2)
async def flaky(context: AppContext, until: int) -> None:
    """Fails until it has been attempted ``until`` times (counted in the log)."""
    tries = sum(1 for line in LOG.read_text().splitlines() if line.startswith("flaky"))  # noqa: ASYNC240
    note("flaky", time.monotonic())
    if tries + 1 < until:
        raise RuntimeError(f"attempt {tries + 1} fails on purpose")


@task(name="tests.always_fails", max_attempts=2, backoff=0.05)
async def always_fails(context: AppContext, reason: str) -> None:
    note("failing", reason)
    flag = LOG.with_suffix(".fixed")
    if not flag.exists():
        raise ValueError(reason)
    note("fixed", reason)


@task(name="tests.slow", timeout=0.2, max_attempts=1)
async def slow(context: AppContext, seconds: float) -> None:
    await asyncio.sleep(seconds)
    note("slow done")


@task(name="tests.long", max_attempts=1, timeout=60)
async def long_job(context: AppContext, n: int, seconds: float) -> None:
    note("start", n, os.getpid())
    await asyncio.sleep(seconds)
    note("end", n, os.getpid())


@task(name="tests.greet")
async def greet(context: AppContext, user: UserModel, times: int = 1) -> None:
    note("greet", user.email, times)


@cron("* * * * * * *", name="tests.every_second")
async def every_second(context: AppContext) -> None:
    note("tick", int(time.time()), os.getpid())


@task(name="tests.chatty")
async def chatty(context: AppContext, n: int) -> None:
    """Logs a line, and queues ``record`` (a job queued by a job)."""
    logging.getLogger("tests.jobs").info("chatty job %s says hello", n)
    await record.enqueue(context, n)


@task(name="tests.whose_context")
async def whose_context(context: AppContext) -> None:
    """Writes which context it was given."""
    note("context", id(context))


# Modules only a web app loads: a job worker must not have them.
WEB_MODULES = (
    "vibetuner.app",
    "vibetuner.admin.site",
    "starlette_admin",
    "vibetuner.auth.signin_email",
    "vibetuner.blobs.routes",
    "vibetuner.web.health",
)


@task(name="tests.what_is_loaded")
async def what_is_loaded(context: AppContext) -> None:
    """Writes which web modules this process loaded and how many routes exist in it."""
    from starlette.routing import BaseRoute

    loaded = [name for name in WEB_MODULES if name in sys.modules]
    routes = sum(1 for thing in gc.get_objects() if isinstance(thing, BaseRoute))
    features = ",".join(feature.name for feature in context.features)
    note("loaded", ",".join(loaded) or "-", routes, features)


#: The jobs of the job tests' apps (no periodic one).
TEST_JOBS = [
    record,
    flaky,
    always_fails,
    slow,
    long_job,
    greet,
    chatty,
    whose_context,
    what_is_loaded,
]
