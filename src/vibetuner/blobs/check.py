"""Find and remove blob orphans: objects without metadata and metadata without objects.

Used by ``vibetuner blobs check``. Only ``Blob`` documents of the store's backend are
compared with it (blobs written under another ``BLOB_BACKEND`` are left alone).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from vibetuner.blobs.store import BlobStore
from vibetuner.models.blob import Blob, BlobStatus
from vibetuner.models.mixins import utcnow

logger = logging.getLogger("vibetuner.blobs")

DEFAULT_GRACE = timedelta(hours=1)


@dataclass
class OrphanReport:
    """What ``find_orphans`` found."""

    #: Stored keys that no available or in-progress ``Blob`` refers to.
    objects_without_metadata: list[str] = field(default_factory=list)
    #: Available blobs whose object is missing.
    metadata_without_objects: list[Blob] = field(default_factory=list)
    #: Uploads that failed, or stayed pending longer than the grace period.
    unfinished: list[Blob] = field(default_factory=list)

    #: Backend leftovers of interrupted uploads: temporary files, open multipart uploads.
    stale_uploads: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        """How many orphans were found."""
        return (
            len(self.objects_without_metadata)
            + len(self.metadata_without_objects)
            + len(self.unfinished)
            + len(self.stale_uploads)
        )

    @property
    def clean(self) -> bool:
        """True when nothing is orphaned."""
        return self.total == 0


async def find_orphans(store: BlobStore, *, grace: timedelta = DEFAULT_GRACE) -> OrphanReport:
    """Compare the backend's keys with the ``Blob`` documents of that backend.

    A ``pending`` blob younger than ``grace`` is an upload in progress and is ignored.
    """
    report = OrphanReport()
    stored = {key async for key in store.backend.keys()}
    claimed: set[str] = set()
    cutoff = utcnow() - grace
    async for blob in Blob.find(Blob.backend == store.backend.name):
        if blob.status == BlobStatus.AVAILABLE:
            claimed.add(blob.key)
            if blob.key not in stored:
                report.metadata_without_objects.append(blob)
        elif blob.status == BlobStatus.PENDING and not _older(blob, cutoff):
            claimed.add(blob.key)
        else:
            report.unfinished.append(blob)
    unfinished_keys = {blob.key for blob in report.unfinished}
    report.objects_without_metadata = sorted(stored - claimed - unfinished_keys)
    report.stale_uploads = await store.backend.stale_uploads(cutoff)
    return report


async def remove_orphans(store: BlobStore, report: OrphanReport) -> int:
    """Delete everything in ``report``; returns how many objects and documents were removed.

    Each orphan is checked again just before it goes: an upload that finished after
    ``find_orphans`` looked is no longer an orphan and is kept.
    """
    removed = 0
    for key in report.objects_without_metadata:
        if await Blob.find_one(Blob.key == key) is not None:
            continue
        await store.backend.delete(key)
        removed += 1
    for blob in report.unfinished:
        await store.backend.delete(blob.key)
        await blob.delete()
        removed += 1
    for blob in report.metadata_without_objects:
        if await store.backend.exists(blob.key):
            continue
        await blob.delete()
        removed += 1
    for ref in report.stale_uploads:
        await store.backend.remove_stale_upload(ref)
        removed += 1
    return removed


def _older(blob: Blob, cutoff) -> bool:  # type: ignore[no-untyped-def]
    created = blob.db_insert_dt
    if created is None:
        return True
    if created.tzinfo is None:  # some drivers hand back naive UTC datetimes
        created = created.replace(tzinfo=cutoff.tzinfo)
    return bool(created < cutoff)
