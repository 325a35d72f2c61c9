"""The file feature's jobs (``BlobsFeature.jobs()``): the hourly orphan check and
deleting a file in the background, retried while the storage is unavailable."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from vibetuner.blobs.check import find_orphans, remove_orphans
from vibetuner.blobs.store import BlobStore
from vibetuner.jobs.queue import find_queue
from vibetuner.jobs.registry import JobTask, cron, task
from vibetuner.models.blob import Blob

if TYPE_CHECKING:
    from vibetuner.context import AppContext

logger = logging.getLogger("vibetuner.jobs")


@cron("23 * * * *", name="vibetuner.check_blobs")
async def check_blobs(context: AppContext) -> None:
    """Every hour: remove stale uploads and objects or records left without the other
    (what ``vibetuner blobs check --delete`` does)."""
    store = context.find(BlobStore)
    if store is None:
        return  # the file feature is not started in this process
    report = await find_orphans(store)
    removed = await remove_orphans(store, report)
    if removed:
        logger.info("blob check removed %d orphaned object(s) or record(s)", removed)


@task(name="vibetuner.delete_blob", max_attempts=8, backoff=5.0)
async def delete_blob(context: AppContext, blob_id: str) -> None:
    """Delete a stored file and its record (retried while the storage is unavailable)."""
    blob = await Blob.get(blob_id)
    store = context.find(BlobStore)
    if blob is not None and store is not None:
        await store.delete(blob)


JOBS: list[JobTask] = [check_blobs, delete_blob]


def file_remover(context: AppContext) -> Callable[[Blob], Awaitable[None]] | None:
    """With background jobs that run ``delete_blob``, a function that removes a file in
    a job (retried while storage is down); None otherwise (remove it at once)."""
    queue = find_queue(context)
    if queue is None or queue.jobs.get(delete_blob.name) is not delete_blob:
        return None

    async def remove(blob: Blob) -> None:
        await delete_blob.enqueue(context, str(blob.id))

    return remove
