"""``JobsFeature``: background jobs for an app, in process or on Redis."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from starlette.middleware import Middleware

from vibetuner import errors
from vibetuner.features import ErrorAnswer, Feature
from vibetuner.i18n import N_
from vibetuner.jobs import queue as queues
from vibetuner.jobs.registry import REGISTRY, JobTask

if TYPE_CHECKING:
    from beanie import Document

    from vibetuner.context import AppContext

logger = logging.getLogger("vibetuner.jobs")


class JobsFeature(Feature):
    """Background jobs: ``@task`` / ``@cron`` functions, queued with ``await job.enqueue()``.

    Without ``REDIS_URL`` jobs run on the web process's event loop (after the response
    of the request that queued them); with it they go to Redis and run in
    ``vibetuner run worker`` processes. ``jobs`` defaults to every declared job, plus
    vibetuner's own (the periodic blob check).
    """

    name = "jobs"

    def __init__(self, jobs: Sequence[JobTask] | None = None) -> None:
        self._jobs = list(jobs) if jobs is not None else None
        self.queue: Any = None
        #: True in a ``vibetuner run worker`` process: the queue runs jobs there.
        self.worker_mode = False
        self.worker_concurrency: int | None = None
        #: Every job the queue runs: this feature's and the other features' (at startup).
        self.all_jobs: list[JobTask] = []

    def jobs(self) -> list[JobTask]:
        """The app's own jobs (every declared one unless a list was given)."""
        return list(REGISTRY.values()) if self._jobs is None else list(self._jobs)

    def collect_jobs(self, context: AppContext) -> list[JobTask]:
        """This feature's jobs, then each other feature's ``jobs()``, without repeats."""
        chosen: list[JobTask] = []
        for feature in [self, *(f for f in context.features if f is not self)]:
            chosen += [job for job in feature.jobs() if job not in chosen]
        return chosen

    def errors(self) -> Mapping[type[errors.VibetunerError], ErrorAnswer]:
        return {errors.JobQueueUnavailable: ErrorAnswer(503, N_("Service unavailable"))}

    async def check_ready(self, context: AppContext) -> list[str]:
        if self.queue is None:
            return ["not started"]
        return [] if await self.queue.ping() else ["unreachable"]

    async def health_details(self, context: AppContext) -> Mapping[str, Any]:
        """``jobs`` (the broker answers), ``jobs_backend`` and, with
        ``JOBS_HEALTH_DEPTH``, ``jobs_waiting``."""
        if self.queue is None:
            return {}
        answering = await self.queue.ping()
        details: dict[str, Any] = {
            "jobs": "ok" if answering else "unreachable",
            "jobs_backend": self.queue.kind,
        }
        if answering and context.settings.jobs_health_depth:
            details["jobs_waiting"] = await self.queue.depth()
        return details

    def models(self) -> Sequence[type[Document]]:
        from vibetuner.models.failed_job import FailedJob

        return [FailedJob]

    def middleware(self) -> Sequence[Middleware]:
        # Resolved per request: the queue exists only once the app has started.
        return [Middleware(_DeferredJobs, feature=self)]

    @asynccontextmanager
    async def lifespan(self, context: AppContext) -> AsyncIterator[None]:
        settings = context.settings
        self.all_jobs = self.collect_jobs(context)
        if settings.redis_url is None:
            from vibetuner.jobs import heartbeat
            from vibetuner.jobs.inprocess import InProcessQueue

            in_process = InProcessQueue(
                self.all_jobs,
                heartbeat_file=heartbeat.file_path(settings),
                heartbeat_every=heartbeat.interval(settings),
            )
            self.queue = in_process
            await in_process.start()
            queues.set_current(in_process, context)
            try:
                yield
            finally:
                queues.set_current(None)
                await in_process.close(settings.jobs_shutdown_grace)
            return
        from vibetuner.jobs.redis_queue import RedisQueue

        on_redis = RedisQueue(
            settings,
            self.all_jobs,
            concurrency=self.worker_concurrency,
            worker=self.worker_mode,
        )
        self.queue = on_redis
        queues.set_current(on_redis, context)
        try:
            if self.worker_mode:
                yield  # the worker command runs (and enters) the streaq worker itself
            else:
                async with on_redis:
                    yield
        finally:
            queues.set_current(None)


class _DeferredJobs:
    """``JobsMiddleware`` once the in-process queue exists; a pass-through otherwise."""

    def __init__(self, app: Any, feature: JobsFeature) -> None:
        self.app = app
        self.feature = feature
        self._wrapped: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        from vibetuner.jobs.inprocess import InProcessQueue, JobsMiddleware

        queue = self.feature.queue
        if scope["type"] != "http" or not isinstance(queue, InProcessQueue):
            await self.app(scope, receive, send)
            return
        if self._wrapped is None or self._wrapped.queue is not queue:
            self._wrapped = JobsMiddleware(self.app, queue)
        await self._wrapped(scope, receive, send)


async def requeue_failed(feature: JobsFeature, failed: Any) -> bool:
    """Queue a dead-lettered job (a ``FailedJob``) again with its arguments.

    The dead letter is removed; should the job fail every attempt again, a new one is
    recorded. In process the job starts in the background (``queue.drain()`` waits for
    it). False, and nothing changed, when this app has no job of that name.
    """
    from vibetuner.jobs.inprocess import InProcessQueue

    # The app's own jobs are read again: one declared after startup can still be retried.
    known = [*feature.all_jobs, *feature.jobs()]
    job = next((job for job in known if job.name == failed.task), None)
    if job is None:
        return False
    await failed.delete()
    queue = feature.queue
    if isinstance(queue, InProcessQueue):
        queue.spawn(job, failed.args, failed.kwargs, 0)
    else:
        await queue.enqueue(job, failed.args, failed.kwargs, 0, None)
    return True
