"""One attempt of a job: run with its context, its outcome, the dead letters."""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vibetuner.jobs.observers import observed, observing
from vibetuner.jobs.registry import JobCannotRun, JobTask
from vibetuner.models.failed_job import FailedJob
from vibetuner.request_id import RequestInfo, bound, new_request_id

if TYPE_CHECKING:
    from vibetuner.context import AppContext

logger = logging.getLogger("vibetuner.jobs")


@dataclass
class Outcome:
    """How one attempt ended."""

    succeeded: bool
    error: str = ""
    retry_in: float | None = None  # seconds, when another attempt follows


async def attempt(
    context: AppContext,
    job: JobTask,
    args: list[Any],
    kwargs: dict[str, Any],
    number: int,
    request_id: str | None = None,
    headers: dict[str, str] | None = None,
) -> Outcome:
    """Run attempt ``number`` of ``job`` with ``context``: within its timeout, failures
    logged; after the last failed attempt the job is kept as a ``FailedJob``.

    While it runs, ``request_id`` (the id of the request that queued it, else a new one)
    is the current request id, so the job's log lines and the jobs it queues carry it;
    ``headers`` (a trace context) go to the observers of :mod:`vibetuner.jobs.observers`.
    """
    info = RequestInfo(id=request_id or new_request_id(), job=job.name)
    with bound(info):
        if not observing():
            return await _attempt(context, job, args, kwargs, number)
        with observed(job, number, headers) as ended:
            started = time.perf_counter()
            outcome = await _attempt(context, job, args, kwargs, number)
            for tell in ended:
                tell(outcome, time.perf_counter() - started)
            return outcome


async def _attempt(
    context: AppContext, job: JobTask, args: list[Any], kwargs: dict[str, Any], number: int
) -> Outcome:
    try:
        if job.timeout is None:
            await job.run(context, args, kwargs)
        else:
            async with asyncio.timeout(job.timeout):
                await job.run(context, args, kwargs)
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
    try:
        await FailedJob(
            task=name, args=args, kwargs=kwargs, attempts=attempts, error=error[:10_000]
        ).insert()
    except Exception:  # the database is down too: the log line is all that is left
        logger.exception("could not record the failed job %s", name)
