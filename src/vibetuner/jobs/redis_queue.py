"""Jobs on Redis, through ``streaq`` (Redis streams): queued by the web processes, run by
``vibetuner run worker`` processes.

streaq gives the delivery: a job is acknowledged only once it has run, and a job whose
worker died (killed, crashed, lost its connection) is handed to another worker after
``JOBS_IDLE_TIMEOUT``; delayed jobs and periodic jobs are scheduled in Redis, so each
tick runs once however many workers there are. The guarantee is **at least once**: a
job may run twice (a worker killed after the work but before the acknowledgement), so
jobs should be safe to repeat. vibetuner adds the attempt policy (exponential backoff,
``FailedJob`` after the last attempt), idempotency keys and the error a route answers
with when Redis is down. Payloads are signed with a key derived from ``SESSION_KEY``.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

from coredis.exceptions import ConnectionError as RedisConnectionError
from coredis.tokens import PureToken
from streaq import StreaqRetry, Worker

from vibetuner.errors import JobQueueUnavailable
from vibetuner.jobs import heartbeat
from vibetuner.jobs.queue import IDEMPOTENCY_TTL
from vibetuner.jobs.registry import JobTask
from vibetuner.jobs.runner import attempt
from vibetuner.services.keys import derive_key

if TYPE_CHECKING:
    from vibetuner.context import AppContext

logger = logging.getLogger("vibetuner.jobs")
# Room streaq gets beyond a job's own timeout before it gives up on the attempt itself.
TIMEOUT_MARGIN = 30


class RedisQueue:
    """The queue of ``JobsFeature`` with ``REDIS_URL``."""

    kind: Literal["in-process", "redis"] = "redis"

    def __init__(
        self,
        context: AppContext,
        jobs: list[JobTask],
        *,
        concurrency: int | None = None,
        worker: bool = False,
    ) -> None:
        settings = context.settings
        assert settings.redis_url is not None
        #: What every job is run with (in a worker process).
        self.context = context
        self.settings = settings
        self.jobs = {job.name: job for job in jobs}
        self.concurrency = concurrency or settings.jobs_concurrency
        self.handle_signals = worker
        self._build()

    def _build(self) -> None:
        """A streaq worker (a fresh connection) with every job registered on it."""
        settings = self.settings
        assert settings.redis_url is not None
        self.worker: Any = Worker(
            redis_url=settings.redis_url.get_secret_value(),
            queue_name=settings.jobs_queue,
            concurrency=self.concurrency,
            idle_timeout=settings.jobs_idle_timeout,
            grace_period=int(settings.jobs_shutdown_grace),
            handle_signals=self.handle_signals,
            signing_secret=derive_key(settings, "jobs").hex(),
        )
        self.registered: dict[str, Any] = {}
        for job in self.jobs.values():
            self.registered[job.name] = self._register(job)

    def _register(self, job: JobTask) -> Any:
        timeout = None if job.timeout is None else timedelta(seconds=job.timeout + TIMEOUT_MARGIN)
        registered: Any = None

        async def run(
            args: list[Any],
            kwargs: dict[str, Any],
            request_id: str | None = None,
            headers: dict[str, str] | None = None,
        ) -> None:
            outcome = await attempt(
                self.context, job, args, kwargs, registered.context.tries, request_id, headers
            )
            if outcome.retry_in is not None:
                raise StreaqRetry(outcome.error, delay=timedelta(seconds=outcome.retry_in))

        async def tick() -> None:
            outcome = await attempt(self.context, job, [], {}, registered.context.tries)
            if outcome.retry_in is not None:
                raise StreaqRetry(outcome.error, delay=timedelta(seconds=outcome.retry_in))

        if job.schedule is not None:
            registered = self.worker.cron(
                job.schedule,
                name=job.name,
                max_tries=None,
                timeout=timeout or timedelta(hours=1),
            )(tick)
        else:
            # The attempt enforces the job's own timeout (asyncio.timeout in attempt()).
            registered = self.worker.task(name=job.name, max_tries=None, ttl=timedelta(minutes=5))(
                run
            )
        return registered

    async def __aenter__(self) -> RedisQueue:
        await self.worker.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.worker.__aexit__(*exc_info)

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
        registered = self.registered.get(job.name)
        if registered is None:
            raise JobQueueUnavailable(f"the job {job.name} is not part of this app's JobsFeature")
        try:
            if key is not None:
                fresh = await self.worker.redis.set(
                    f"{self.worker.prefix}vibetuner:key:{key}",
                    "1",
                    condition=PureToken.NX,
                    ex=IDEMPOTENCY_TTL,
                )
                if not fresh:
                    return None
            queued = registered.enqueue(args, kwargs, request_id, headers)
            if delay > 0:
                queued = queued.start(delay=timedelta(seconds=delay))
            await queued
        except JobQueueUnavailable:
            raise
        except Exception as exc:
            logger.error("could not queue job %s: %s: %s", job.name, type(exc).__name__, exc)
            raise JobQueueUnavailable(
                "the job queue (Redis) cannot be reached; the job was not queued"
            ) from exc
        return str(queued.id)

    async def ping(self) -> bool:
        try:
            return bool(await self.worker.redis.ping())
        except Exception:
            return False

    async def depth(self) -> int:
        return int(await self.worker.queue_size())

    async def run_worker(self) -> None:
        """Run jobs until a signal (SIGINT, SIGTERM) asks to stop.

        When Redis goes away the worker waits and connects again (a job it was running
        is handed out again after ``JOBS_IDLE_TIMEOUT``).
        """
        # The liveness signal `vibetuner jobs health` reads (JOBS_HEARTBEAT_TIMEOUT).
        member = heartbeat.member_name()
        beating = asyncio.create_task(heartbeat.beat_to_redis(self.settings, member))
        try:
            await self._run_until_stopped()
        finally:
            beating.cancel()
            await asyncio.gather(beating, return_exceptions=True)
            await heartbeat.stop_beating_in_redis(self.settings, member)

    async def _run_until_stopped(self) -> None:
        wait = 0.5
        while True:
            try:
                await self.worker.run_async()
                return
            except Exception as exc:
                if not _connection_lost(exc):
                    raise
            logger.warning("lost the connection to Redis; connecting again in %.1f s", wait)
            await asyncio.sleep(wait)
            wait = min(wait * 2, 10.0)
            self._build()


def _connection_lost(exc: BaseException) -> bool:
    """True when ``exc`` (or one inside an exception group) is a lost Redis connection."""
    if isinstance(exc, (RedisConnectionError, ConnectionError, OSError)):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return all(_connection_lost(inner) for inner in exc.exceptions)
    return exc.__cause__ is not None and _connection_lost(exc.__cause__)
