"""vibetuner's own jobs, run by every app with ``JobsFeature``."""

from __future__ import annotations

import logging

from vibetuner.jobs.queue import job_context
from vibetuner.jobs.registry import JobTask, cron, task

logger = logging.getLogger("vibetuner.jobs")


@cron("23 * * * *", name="vibetuner.check_blobs")
async def check_blobs() -> None:
    """Every hour: remove stale uploads and objects or records left without the other
    (what ``vibetuner blobs check --delete`` does)."""
    from vibetuner.blobs.check import find_orphans, remove_orphans
    from vibetuner.blobs.store import BlobStore

    store = job_context().find(BlobStore)
    if store is None:
        return  # the app stores no files
    report = await find_orphans(store)
    removed = await remove_orphans(store, report)
    if removed:
        logger.info("blob check removed %d orphaned object(s) or record(s)", removed)


@task(name="vibetuner.delete_blob", max_attempts=8, backoff=5.0)
async def delete_blob(blob_id: str) -> None:
    """Delete a stored file and its record (retried while the storage is unavailable)."""
    from vibetuner.models.blob import Blob

    blob = await Blob.get(blob_id)
    from vibetuner.blobs.store import BlobStore

    store = job_context().find(BlobStore)
    if blob is not None and store is not None:
        await store.delete(blob)


JOBS: list[JobTask] = [check_blobs, delete_blob]
