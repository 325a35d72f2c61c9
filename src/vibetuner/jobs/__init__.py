"""Background jobs: declare with ``@task`` / ``@cron``, queue with ``await job.enqueue()``.

::

    from vibetuner.jobs import task

    @task(max_attempts=3, timeout=60)
    async def make_thumbnail(note: Note, blob_id: str) -> None:
        ...

    await make_thumbnail.enqueue(note, blob_id, key=f"thumb:{blob_id}")

Add ``JobsFeature()`` to the app. Nothing here imports a broker library until the app
starts with ``REDIS_URL`` set.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "task": "vibetuner.jobs.registry",
    "cron": "vibetuner.jobs.registry",
    "JobTask": "vibetuner.jobs.registry",
    "JobCannotRun": "vibetuner.jobs.registry",
    "JobsFeature": "vibetuner.jobs.feature",
    "job_context": "vibetuner.jobs.queue",
    "current_queue": "vibetuner.jobs.queue",
}

__all__ = ["task", "cron", "JobTask", "JobCannotRun", "JobsFeature", "job_context", "current_queue"]

if TYPE_CHECKING:
    from vibetuner.jobs.feature import JobsFeature
    from vibetuner.jobs.queue import current_queue, job_context
    from vibetuner.jobs.registry import JobCannotRun, JobTask, cron, task


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'vibetuner.jobs' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
