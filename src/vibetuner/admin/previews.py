"""Whether the admin may show a stored file as an image preview.

An ``<img>`` makes the admin's browser decode the file: one whose header states more
than ``IMAGE_MAX_PIXELS`` (a decompression bomb stored before the limit, or under a
larger one) is listed without its preview. Only the head of the file is read.
"""

from __future__ import annotations

from vibetuner.blobs.store import BlobStore
from vibetuner.errors import BlobError
from vibetuner.models.blob import Blob
from vibetuner.services.images import ImageProbe, ImageSize

# Image types the admin shows inline (never SVG: it can carry script).
PREVIEW_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
# Enough for the header of nearly every image; one whose size is stated further in
# (a JPEG behind large metadata) is not previewed.
HEAD_BYTES = 64 * 1024


async def preview_size(store: BlobStore | None, blob: Blob) -> ImageSize | None:
    """The size stated in the blob's image header; None when it is not a readable image."""
    if store is None or blob.content_type not in PREVIEW_TYPES or not blob.is_available:
        return None
    probe = ImageProbe()
    try:
        # At most HEAD_BYTES are read, so the range is read to its end.
        async for chunk in store.open(blob, start=0, end=HEAD_BYTES - 1):
            probe.feed(chunk)
    except (BlobError, ValueError):
        return None
    return probe.finish()


async def preview(store: BlobStore | None, blob: Blob, max_pixels: int) -> tuple[bool, str]:
    """Whether to show the preview, and otherwise why not (empty when there is no reason)."""
    size = await preview_size(store, blob)
    if size is None:
        return False, ""
    if size.pixels > max_pixels:
        return False, f"No preview: {size}"
    return True, ""
