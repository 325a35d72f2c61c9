"""What every job queue does the same way: one attempt, its outcome, the dead letters.

Two queues implement :class:`JobQueue`: ``InProcessQueue`` (no broker; jobs run on the
web process's event loop) and ``RedisQueue`` (Redis through ``streaq``; jobs run in
``vibetuner run worker`` processes). ``JobsFeature`` opens one at startup and makes it
current, so ``await my_job.enqueue(...)`` needs no handle.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from vibetuner.errors import ConfigurationError
from vibetuner.jobs.registry import JobCannotRun, JobTask
from vibetuner.request_id import RequestInfo, bound, new_request_id

if TYPE_CHECKING:
    from vibetuner.context import AppContext

logger = logging.getLogger("vibetuner.jobs")

IDEMPOTENCY_TTL = 24 * 3600
_current: JobQueue | None = None
_context: AppContext | None = None


class JobQueue(Protocol):
    """A place jobs are queued to and run from."""

    kind: Literal["in-process", "redis"]

    async def enqueue(
        self,
        job: JobTask,
        args: list[Any],
        kwargs: dict[str, Any],
        delay: float,
        key: str | None,
        request_id: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> str | None:
        """Queue ``job``; its id, or None when ``key`` was queued before.

        ``request_id`` is the id of the request (or job) that queued it: the job's log
        lines carry it. ``headers`` travel with the job to its attempts (the trace
        context, from :func:`carried_headers`).
        """
        ...

    async def ping(self) -> bool:
        """True when the queue can take jobs."""
        ...

    async def depth(self) -> int:
        """Jobs waiting (queued or scheduled)."""
        ...


def current_queue() -> JobQueue:
    """The queue of the running app; a clear error when jobs are not set up."""
    if _current is None:
        raise ConfigurationError(
            "no job queue is running: add JobsFeature() to the app (and start it)"
        )
    return _current


def set_current(queue: JobQueue | None, context: AppContext | None = None) -> None:
    """Make ``queue`` the one ``enqueue`` uses (JobsFeature does this at startup)."""
    global _current, _context
    _current = queue
    _context = context


def job_context() -> AppContext:
    """The running app's context, for jobs: settings, the blob store, the mailer ..."""
    if _context is None:
        raise ConfigurationError("no app is running jobs here: add JobsFeature() and start it")
    return _context


class AttemptObserver(Protocol):
    """Watches jobs being queued and run (tracing and metrics: ``vibetuner.observability``)."""

    def headers(self) -> dict[str, str]:
        """What a job queued here carries to its attempts (a trace context)."""
        ...

    def attempt(
        self, job: JobTask, number: int, headers: dict[str, str] | None
    ) -> AbstractContextManager[Callable[[Outcome, float], None]]:
        """Entered around one attempt; the callable it gives is told how it ended."""
        ...


_observers: list[AttemptObserver] = []


def observe_attempts(observer: AttemptObserver) -> None:
    """Add ``observer`` to every job queued and every attempt run in this process."""
    if observer not in _observers:
        _observers.append(observer)


def carried_headers() -> dict[str, str] | None:
    """The headers a job queued here carries (None when nothing observes jobs)."""
    if not _observers:
        return None
    headers: dict[str, str] = {}
    for observer in _observers:
        headers.update(observer.headers())
    return headers or None


@dataclass
class Outcome:
    """How one attempt ended."""

    succeeded: bool
    error: str = ""
    retry_in: float | None = None  # seconds, when another attempt follows


async def attempt(
    job: JobTask,
    args: list[Any],
    kwargs: dict[str, Any],
    number: int,
    request_id: str | None = None,
    headers: dict[str, str] | None = None,
) -> Outcome:
    """Run attempt ``number`` of ``job``: within its timeout, failures logged; after the
    last failed attempt the job is kept as a ``FailedJob``.

    While it runs, ``request_id`` (the id of the request that queued it, else a new one)
    is the current request id, so the job's log lines and the jobs it queues carry it.
    """
    info = RequestInfo(id=request_id or new_request_id(), job=job.name)
    with bound(info):
        if not _observers:
            return await _attempt(job, args, kwargs, number)
        with ExitStack() as stack:
            ended = [stack.enter_context(o.attempt(job, number, headers)) for o in _observers]
            started = time.perf_counter()
            outcome = await _attempt(job, args, kwargs, number)
            for tell in ended:
                tell(outcome, time.perf_counter() - started)
            return outcome


async def _attempt(job: JobTask, args: list[Any], kwargs: dict[str, Any], number: int) -> Outcome:
    try:
        if job.timeout is None:
            await job.run(args, kwargs)
        else:
            async with asyncio.timeout(job.timeout):
                await job.run(args, kwargs)
    except Exception as exc:
        if isinstance(exc, TimeoutError):
            error = f"TimeoutError: the attempt took longer than {job.timeout:g} s"
        else:
            error = "".join(traceback.format_exception_only(exc)).strip()
        if number < job.max_attempts and not isinstance(exc, JobCannotRun):
            delay = job.retry_delay(number)
            logger.warning(
                "job %s failed (attempt %d of %d), retrying in %.1f s: %s",
                job.name,
                number,
                job.max_attempts,
                delay,
                error,
            )
            return Outcome(False, error, retry_in=delay)
        logger.error("job %s failed after %d attempt(s): %s", job.name, number, error)
        await record_failure(job.name, args, kwargs, number, error)
        return Outcome(False, error)
    return Outcome(True)


async def record_failure(
    name: str, args: list[Any], kwargs: dict[str, Any], attempts: int, error: str
) -> None:
    """Keep a job that will not run again as a ``FailedJob`` (its dead letter)."""
    from vibetuner.models.failed_job import FailedJob

    try:
        await FailedJob(
            task=name, args=args, kwargs=kwargs, attempts=attempts, error=error[:10_000]
        ).insert()
    except Exception:  # the database is down too: the log line is all that is left
        logger.exception("could not record the failed job %s", name)
