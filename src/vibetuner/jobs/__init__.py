"""Background jobs: declare with ``@task`` / ``@cron``, queue with ``await job.enqueue(context)``.

::

    from vibetuner import AppContext
    from vibetuner.jobs import task

    @task(max_attempts=3, timeout=60)
    async def make_thumbnail(context: AppContext, note: Note, blob_id: str) -> None:
        store = context.get(BlobStore)
        ...

    await make_thumbnail.enqueue(context, note, blob_id, key=f"thumb:{blob_id}")

A job's first parameter is the app's context, passed when it runs. Register the app's
jobs with ``JobsFeature(jobs=[make_thumbnail, ...])``; a feature registers its own in
its ``jobs()``. Nothing here imports a broker library until the app starts with
``REDIS_URL`` set.
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
}

__all__ = ["task", "cron", "JobTask", "JobCannotRun", "JobsFeature"]

if TYPE_CHECKING:
    from vibetuner.jobs.feature import JobsFeature
    from vibetuner.jobs.registry import JobCannotRun, JobTask, cron, task


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'vibetuner.jobs' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
