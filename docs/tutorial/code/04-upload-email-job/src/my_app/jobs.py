"""This app's background jobs: thumbnails of pictures, and the clean-up of deleted notes
(which the notes pages also use).

They run in the web process, or with ``REDIS_URL`` in ``vibetuner run worker``
processes; ``await make_thumbnail.enqueue(context, ...)`` is the same either way. Each
gets the app's context as its first argument; ``JOBS`` is what the app registers.
"""

from __future__ import annotations

import asyncio
import io
import logging
from datetime import timedelta
from typing import Any

from vibetuner import AppContext, BlobStore
from vibetuner.jobs import JobCannotRun, JobTask, cron, task
from vibetuner.models import Blob, UserModel
from vibetuner.models.mixins import utcnow
from vibetuner.realtime import RealtimeUnavailable, publish, user_channel

from .models import Feedback, Note

logger = logging.getLogger(__name__)

THUMBNAIL_SIZE = (320, 320)
# How long a deleted note can be brought back before it is purged with its files.
UNDO_WINDOW = timedelta(minutes=10)
PICTURES = ("image/png", "image/jpeg", "image/gif", "image/webp")
# What Pillow may decode, whatever the declared type says: nothing else is tried.
FORMATS = ("PNG", "JPEG", "GIF", "WEBP")
#: The event a user's open notes pages refresh their list on, in every browser.
NOTES_CHANGED = "notes-changed"


async def tell_open_pages(user_id: Any) -> None:
    """Tell the user's open notes pages that their notes changed (they fetch the list).

    The change is saved whatever happens here: with Redis away the pages catch up on
    their next load.
    """
    try:
        await publish(user_channel(user_id), NOTES_CHANGED)
    except RealtimeUnavailable as exc:
        logger.warning("the open notes pages were not told of a change: %s", exc)


def is_picture(blob: Blob) -> bool:
    """True for the attachments that get a thumbnail."""
    return blob.content_type in PICTURES


def thumbnail_of(data: bytes, max_pixels: int) -> bytes | None:
    """A WebP at most 320 x 320 of the picture ``data`` (Pillow; runs in a thread).

    None for a picture of more than ``max_pixels`` (``IMAGE_MAX_PIXELS``): its size is
    read from the header before anything is decoded, since decoding takes memory for
    every pixel however small the file (a decompression bomb).
    """
    from PIL import Image, UnidentifiedImageError

    # Pillow itself refuses (DecompressionBombError) past twice this, whatever calls it.
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with Image.open(io.BytesIO(data), formats=FORMATS) as picture:
            width, height = picture.size  # from the header: nothing decoded yet
            if width * height > max_pixels:
                return None
            picture.thumbnail(THUMBNAIL_SIZE)
            out = io.BytesIO()
            picture.convert("RGBA" if picture.mode in ("RGBA", "LA", "P") else "RGB").save(
                out, format="WEBP", quality=80
            )
            return out.getvalue()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # (Between the limit and twice it Pillow warns, an error where warnings are.)
        return None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise JobCannotRun(f"not a picture Pillow can read: {exc}") from None


async def purge_deleted(store: BlobStore, user: UserModel | None = None) -> int:
    """Remove for good the notes deleted longer ago than ``UNDO_WINDOW``, with their files."""
    cutoff = utcnow() - UNDO_WINDOW
    query: dict[str, Any] = {"deleted_at": {"$ne": None, "$lt": cutoff}}
    if user is not None:
        query["owner.$id"] = user.id
    purged = 0
    # (Links are fetched per note: fetch_links=True would match on the fetched owner.)
    for note in await Note.find(query).to_list():
        await note.fetch_all_links()
        await discard(store, [blob for blob in note.attachments if isinstance(blob, Blob)])
        thumbnails = [await Blob.get(blob_id) for blob_id in note.thumbnails.values()]
        await discard(store, [blob for blob in thumbnails if blob is not None])
        await note.delete()
        purged += 1
    return purged


async def discard(store: BlobStore, blobs: list[Blob]) -> None:
    """Delete ``blobs`` that no note points to, logging (not raising) failures."""
    for blob in blobs:
        try:
            await store.delete(blob)
        except Exception:
            logger.exception("could not remove attachment %s", blob.id)


@task(max_attempts=3, timeout=120)
async def make_thumbnail(context: AppContext, note: Note, blob_id: str) -> None:
    """Store a small copy of the picture ``blob_id`` and show it in the note.

    A picture over ``IMAGE_MAX_PIXELS`` (uploads refuse them; one may be older than the
    limit) gets no thumbnail: the job logs it and ends, and is not retried.
    """
    store = context.get(BlobStore)
    blob = await Blob.get(blob_id)
    if blob is None or not is_picture(blob):
        return
    data = b"".join([chunk async for chunk in store.open(blob)])
    limit = context.settings.image_max_pixels
    small = await asyncio.to_thread(thumbnail_of, data, limit)
    if small is None:
        logger.warning("no thumbnail for %s: the picture is over IMAGE_MAX_PIXELS", blob_id)
        return
    thumbnail = await store.put(
        small,
        filename=f"thumbnail-{blob.filename}.webp",
        content_type="image/webp",
        uploaded_by=blob.uploaded_by,
        namespace="thumbnails",
    )
    await note.update({"$set": {f"thumbnails.{blob_id}": str(thumbnail.id)}})
    await tell_open_pages(note.owner.ref.id)  # the thumbnail shows in the open pages


@cron("*/5 * * * *")
async def purge_deleted_notes(context: AppContext) -> None:
    """Every five minutes: remove for good the notes whose undo window has passed."""
    purged = await purge_deleted(context.get(BlobStore))
    if purged:
        logger.info("purged %d deleted note(s)", purged)


#: This app's jobs, registered in ``JobsFeature(jobs=JOBS)`` (app.py and worker.py).
# --8<-- [start:email_feedback]
@task(max_attempts=5, backoff=2.0, timeout=60)
async def email_feedback(context: AppContext, feedback: Feedback) -> None:
    """Email a piece of feedback to every admin; retried when the mail server fails."""
    author = await UserModel.get(feedback.author.ref.id)
    admins = await UserModel.find({"roles": "admin", "is_active": True}).to_list()
    for admin in admins:
        await context.require_mailer().send_template(
            "feedback",
            to=admin.email,
            locale=admin.locale,
            context={
                "feedback": feedback,
                "author": author.email if author else "(deleted)",
                "url": f"{context.settings.base_url}/admin",
            },
        )
    if not admins:
        logger.warning("feedback %s: no admin to tell (vibetuner users promote EMAIL)", feedback.id)


# --8<-- [end:email_feedback]


JOBS: list[JobTask] = [make_thumbnail, purge_deleted_notes, email_feedback]
