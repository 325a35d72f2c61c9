"""What every job queue provides, and how code finds the app's queue.

Two queues implement :class:`JobQueue`: ``InProcessQueue`` (no broker; jobs run on the
web process's event loop) and ``RedisQueue`` (Redis through ``streaq``; jobs run in
``vibetuner run worker`` processes). ``JobsFeature`` opens one at startup and holds it;
``await my_job.enqueue(context, ...)`` finds it through the app's context.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from vibetuner.errors import ConfigurationError

if TYPE_CHECKING:
    from vibetuner.context import AppContext
    from vibetuner.jobs.registry import JobTask

IDEMPOTENCY_TTL = 24 * 3600


class JobQueue(Protocol):
    """A place jobs are queued to and run from."""

    kind: Literal["in-process", "redis"]

    @property
    def jobs(self) -> Mapping[str, JobTask]:
        """The jobs this queue runs, by name."""
        ...

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


@runtime_checkable
class HoldsJobQueue(Protocol):
    """A feature that holds the app's job queue once started (``JobsFeature``)."""

    queue: JobQueue | None


def find_queue(context: AppContext) -> JobQueue | None:
    """The running job queue of the app of ``context``, or None without one."""
    for feature in context.features:
        if isinstance(feature, HoldsJobQueue) and feature.queue is not None:
            return feature.queue
    return None


def queue_of(context: AppContext) -> JobQueue:
    """The running job queue of the app of ``context``; a clear error without one."""
    queue = find_queue(context)
    if queue is None:
        raise ConfigurationError(
            "no job queue is running: add JobsFeature() to the app (and start it)"
        )
    return queue


def check_known(queue: JobQueue, job: JobTask) -> None:
    """Refuse a job the queue was not given: jobs are registered, not found."""
    if queue.jobs.get(job.name) is not job:
        raise ConfigurationError(
            f"the job {job.name} is not registered: add it to JobsFeature(jobs=[...]) "
            "or to the jobs() of the feature that owns it"
        )
