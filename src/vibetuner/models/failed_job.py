"""Jobs that failed every attempt: the dead letters of the job queue."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pymongo
from beanie import Document
from pydantic import Field
from pymongo import IndexModel

from vibetuner.models.mixins import utcnow


class FailedJob(Document):
    """A job that used up its attempts (or was interrupted), kept to look at and retry.

    ``vibetuner jobs list`` shows them, ``vibetuner jobs retry ID`` queues the job again
    with the same arguments, ``vibetuner jobs purge`` deletes them.
    """

    task: str = Field(max_length=200)
    args: list[Any] = Field(default_factory=list)
    kwargs: dict[str, Any] = Field(default_factory=dict)
    attempts: int = 0
    error: str = Field(default="", max_length=10_000)
    failed_at: datetime = Field(default_factory=utcnow)
    retried_at: datetime | None = None

    class Settings:
        name = "failed_jobs"
        indexes = [IndexModel([("failed_at", pymongo.DESCENDING)], name="newest_first")]
