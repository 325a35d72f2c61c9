"""``JobsFeature``: background jobs for an app, in process or on Redis."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from starlette.middleware import Middleware
from starlette.types import Receive, Scope, Send

from vibetuner.errors import ConfigurationError, JobQueueUnavailable, VibetunerError
from vibetuner.features import ErrorAnswer, Feature
from vibetuner.i18n import N_
from vibetuner.jobs.heartbeat import file_path, interval
from vibetuner.jobs.inprocess import InProcessQueue, JobsMiddleware
from vibetuner.jobs.queue import JobQueue
from vibetuner.jobs.registry import JobTask
from vibetuner.models.failed_job import FailedJob

if TYPE_CHECKING:
    from beanie import Document

    from vibetuner.context import AppContext

logger = logging.getLogger("vibetuner.jobs")


class JobsFeature(Feature):
    """Background jobs: ``@task`` / ``@cron`` functions, queued with
    ``await job.enqueue(context, ...)``.

    ``jobs`` are the app's own; every other feature of the app adds its own (its
    ``jobs()``, as ``BlobsFeature`` adds the periodic blob check). Nothing else runs:
    a job is registered by the code that owns it, never by being imported.

    Without ``REDIS_URL`` jobs run on the web process's event loop (after the response
    of the request that queued them); with it they go to Redis and run in
    ``vibetuner run worker`` processes. Found by type:
    ``context.feature(JobsFeature).queue``.
    """

    name = "jobs"

    def __init__(self, jobs: Sequence[JobTask] = ()) -> None:
        self._jobs = list(jobs)
        #: The running queue (None before startup and after shutdown): the one place
        #: the app's queue is held.
        self.queue: JobQueue | None = None
        #: True in a ``vibetuner run worker`` process: the queue runs jobs there.
        self.worker_mode = False
        self.worker_concurrency: int | None = None

    def jobs(self) -> Sequence[JobTask]:
        """The app's own jobs (as given)."""
        return list(self._jobs)

    def models(self) -> Sequence[type[Document]]:
        return [FailedJob]

    def errors(self) -> Mapping[type[VibetunerError], ErrorAnswer]:
        return {JobQueueUnavailable: ErrorAnswer(503, N_("Service unavailable"))}

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

    def middleware(self) -> Sequence[Middleware]:
        # Resolved per request: the queue exists only once the app has started.
        return [Middleware(_DeferredJobs, feature=self)]

    @asynccontextmanager
    async def lifespan(self, context: AppContext) -> AsyncIterator[None]:
        settings = context.settings
        jobs = jobs_of(context.features)
        if settings.redis_url is None:
            in_process = InProcessQueue(
                context,
                jobs,
                heartbeat_file=file_path(settings),
                heartbeat_every=interval(settings),
            )
            self.queue = in_process
            await in_process.start()
            try:
                yield
            finally:
                self.queue = None
                await in_process.close(settings.jobs_shutdown_grace)
            return
        # Lazy: streaq and coredis (the optional `redis` extra) only with REDIS_URL.
        from vibetuner.jobs.redis_queue import RedisQueue

        on_redis = RedisQueue(
            context,
            jobs,
            concurrency=self.worker_concurrency,
            worker=self.worker_mode,
        )
        self.queue = on_redis
        try:
            if self.worker_mode:
                yield  # the worker command runs (and enters) the streaq worker itself
            else:
                async with on_redis:
                    yield
        finally:
            self.queue = None


def jobs_of(features: Sequence[Feature]) -> list[JobTask]:
    """Every job the features own, in order; ``ConfigurationError`` for two jobs that
    share a name."""
    found: dict[str, JobTask] = {}
    for feature in features:
        for job in feature.jobs():
            known = found.get(job.name)
            if known is not None and known is not job:
                raise ConfigurationError(
                    f"two jobs are named {job.name!r} ({feature.name!r} adds the second); "
                    "give one a name="
                )
            found[job.name] = job
    return list(found.values())


class _DeferredJobs:
    """``JobsMiddleware`` once the in-process queue exists; a pass-through otherwise."""

    def __init__(self, app: Any, feature: JobsFeature) -> None:
        self.app = app
        self.feature = feature
        self._wrapped: JobsMiddleware | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        queue = self.feature.queue
        if scope["type"] != "http" or not isinstance(queue, InProcessQueue):
            await self.app(scope, receive, send)
            return
        if self._wrapped is None or self._wrapped.queue is not queue:
            self._wrapped = JobsMiddleware(self.app, queue)
        await self._wrapped(scope, receive, send)


async def requeue_failed(feature: JobsFeature, failed: FailedJob) -> bool:
    """Queue a dead-lettered job (a ``FailedJob``) again with its arguments.

    The dead letter is removed; should the job fail every attempt again, a new one is
    recorded. In process the job starts in the background (``queue.drain()`` waits for
    it). False, and nothing changed, when this app runs no job of that name.
    """
    queue = feature.queue
    if queue is None:
        raise ConfigurationError("the job queue is not running: start the app first")
    job = queue.jobs.get(failed.task)
    if job is None:
        return False
    await failed.delete()
    if isinstance(queue, InProcessQueue):
        queue.spawn(job, failed.args, failed.kwargs, 0)
    else:
        await queue.enqueue(job, failed.args, failed.kwargs, 0, None)
    return True
