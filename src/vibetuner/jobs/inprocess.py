"""Jobs without a broker: they run on the web process's event loop.

A job queued while a request is being answered starts once the response has been
sent (``JobsMiddleware``); one queued anywhere else starts at once. Retries, backoff,
timeouts, dead letters and periodic jobs work as with Redis. What this mode does not
give: jobs survive neither a restart nor a crash (one still running at shutdown after
the grace period is kept as a ``FailedJob`` to retry), and several processes each run
their own periodic jobs. Use ``REDIS_URL`` for that.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vibetuner.jobs.heartbeat import beat_to_file
from vibetuner.jobs.queue import IDEMPOTENCY_TTL
from vibetuner.jobs.registry import JobTask, seconds_to_next
from vibetuner.jobs.runner import attempt, record_failure

if TYPE_CHECKING:
    from vibetuner.context import AppContext

logger = logging.getLogger("vibetuner.jobs")

# Jobs queued during a request, started when its response is complete.
_deferred: ContextVar[list[Any] | None] = ContextVar("vibetuner_deferred_jobs", default=None)


@dataclass
class Enqueued:
    """A job as it was queued (what tests assert on)."""

    id: str
    name: str
    args: list[Any]
    kwargs: dict[str, Any]
    delay: float
    key: str | None
    request_id: str | None = None
    headers: dict[str, str] | None = None


@dataclass
class _Running:
    job: JobTask
    args: list[Any]
    kwargs: dict[str, Any]
    attempts: int = 0
    request_id: str | None = None
    headers: dict[str, str] | None = None
    task: asyncio.Task[None] | None = field(default=None, repr=False)


class InProcessQueue:
    """The queue of ``JobsFeature`` when there is no ``REDIS_URL``."""

    kind: Literal["in-process", "redis"] = "in-process"

    def __init__(
        self,
        context: AppContext,
        jobs: list[JobTask],
        *,
        heartbeat_file: Path | None = None,
        heartbeat_every: float = 15.0,
    ) -> None:
        #: What every job is run with.
        self.context = context
        self.jobs = {job.name: job for job in jobs}
        self.enqueued: list[Enqueued] = []
        self._keys: dict[str, float] = {}
        self._running: set[asyncio.Task[None]] = set()
        self._state: dict[asyncio.Task[None], _Running] = {}
        self._cron: list[asyncio.Task[None]] = []
        self._closed = False
        self.heartbeat_file = heartbeat_file
        self.heartbeat_every = heartbeat_every

    async def start(self) -> None:
        """Start the periodic jobs' clocks (and the heartbeat, when it has a file)."""
        for job in self.jobs.values():
            if job.schedule is not None:
                self._cron.append(asyncio.create_task(self._tick(job), name=f"cron {job.name}"))
        if self.heartbeat_file is not None:
            beat = beat_to_file(self.heartbeat_file, self.heartbeat_every)
            self._cron.append(asyncio.create_task(beat, name="jobs heartbeat"))

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
        now = time.monotonic()
        if key is not None:
            self._keys = {k: until for k, until in self._keys.items() if until > now}
            if key in self._keys:
                return None
            self._keys[key] = now + IDEMPOTENCY_TTL
        job_id = uuid.uuid4().hex
        self.enqueued.append(
            Enqueued(job_id, job.name, args, kwargs, delay, key, request_id, headers)
        )
        deferred = _deferred.get()
        if deferred is not None:
            deferred.append((job, args, kwargs, delay, request_id, headers))
        else:
            self.spawn(job, args, kwargs, delay, request_id, headers)
        return job_id

    def spawn(
        self,
        job: JobTask,
        args: list[Any],
        kwargs: dict[str, Any],
        delay: float,
        request_id: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Run ``job`` in the background (after ``delay`` seconds)."""
        if self._closed:
            logger.warning("job %s queued after shutdown began; it will not run", job.name)
            return
        state = _Running(job, args, kwargs, request_id=request_id, headers=headers)
        task = asyncio.create_task(self._run(state, delay), name=f"job {job.name}")
        state.task = task
        self._running.add(task)
        self._state[task] = state
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._state.pop(task, None)

    async def _run(self, state: _Running, delay: float) -> None:
        _deferred.set(None)  # jobs this job queues start at once, not "after a response"
        if delay > 0:
            await asyncio.sleep(delay)
        while True:
            state.attempts += 1
            outcome = await attempt(
                self.context,
                state.job,
                state.args,
                state.kwargs,
                state.attempts,
                state.request_id,
                state.headers,
            )
            if outcome.retry_in is None:
                return
            await asyncio.sleep(outcome.retry_in)

    async def _tick(self, job: JobTask) -> None:
        assert job.schedule is not None
        while True:
            await asyncio.sleep(seconds_to_next(job.schedule))
            self.spawn(job, [], {}, 0)

    async def ping(self) -> bool:
        return not self._closed

    async def depth(self) -> int:
        return len(self._running)

    async def drain(self) -> None:
        """Wait until no job is waiting or running (tests; jobs may queue more).

        Bound it with ``asyncio.timeout`` when a job might never end.
        """
        while self._running:
            await asyncio.gather(*list(self._running), return_exceptions=True)

    async def close(self, grace: float) -> None:
        """Stop: wait up to ``grace`` seconds for running jobs, keep the rest as failed."""
        self._closed = True
        for clock in self._cron:
            clock.cancel()
        await asyncio.gather(*self._cron, return_exceptions=True)
        if self._running:
            await asyncio.wait(list(self._running), timeout=grace)
        for task in list(self._running):
            state = self._state.get(task)
            task.cancel()
            if state is not None:
                await record_failure(
                    state.job.name,
                    state.args,
                    state.kwargs,
                    state.attempts,
                    "interrupted: the server stopped before the job finished",
                )
        await asyncio.gather(*list(self._running), return_exceptions=True)


class JobsMiddleware:
    """Starts the jobs a request queued once its response has been sent."""

    def __init__(self, app: ASGIApp, queue: InProcessQueue) -> None:
        self.app = app
        self.queue = queue

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        pending: list[Any] = []
        token = _deferred.set(pending)

        async def send_then_start(message: Message) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                self._start(pending)

        try:
            await self.app(scope, receive, send_then_start)
        finally:
            _deferred.reset(token)
            self._start(pending)  # the response failed or was cut short: still run them

    def _start(self, pending: list[Any]) -> None:
        while pending:
            job, args, kwargs, delay, request_id, headers = pending.pop(0)
            self.queue.spawn(job, args, kwargs, delay, request_id, headers)
