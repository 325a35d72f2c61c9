"""This app's documents. Every class listed in ``MODELS`` is registered at startup."""

from __future__ import annotations

from datetime import datetime

import pymongo
from beanie import Document, Link
from pydantic import Field
from pymongo import IndexModel
from vibetuner.models import Blob, TimeStampMixin, UserModel


class Note(TimeStampMixin, Document):
    """A note written by a user, with optional file attachments.

    ``TimeStampMixin`` adds ``db_insert_dt`` and ``db_update_dt``; ``owner`` and
    ``attachments`` are links to vibetuner's own documents.
    """

    title: str = Field(min_length=1, max_length=200)
    body: str = Field(default="", max_length=20_000)
    owner: Link[UserModel]
    attachments: list[Link[Blob]] = Field(default_factory=list)
    # Attachment id -> id of its thumbnail (made by the make_thumbnail job).
    thumbnails: dict[str, str] = Field(default_factory=dict)
    # Set when the note is deleted; "Undo" clears it, and the note and its files go for
    # good once the undo window has passed (see jobs.purge_deleted).
    deleted_at: datetime | None = None
    # --8<-- [start:pinned]
    # Pinned notes get a badge in the list (an admin pins them in /admin).
    pinned: bool = False
    # --8<-- [end:pinned]

    class Settings:
        name = "notes"
        indexes = [
            IndexModel(
                [("owner.$id", pymongo.ASCENDING), ("db_insert_dt", pymongo.DESCENDING)],
                name="owner_newest_first",
            ),
        ]


# --8<-- [start:feedback]
class Feedback(TimeStampMixin, Document):
    """What a user told the team, with an optional screenshot."""

    author: Link[UserModel]
    message: str = Field(min_length=1, max_length=5_000)
    screenshot: Link[Blob] | None = None

    class Settings:
        name = "feedback"


MODELS: list[type[Document]] = [Note, Feedback]
# --8<-- [end:feedback]
