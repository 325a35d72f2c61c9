"""Counters of rate-limited actions, shared by every app process through MongoDB."""

from __future__ import annotations

from datetime import datetime

import pymongo
from beanie import Document
from pydantic import Field
from pymongo import IndexModel


class RateLimitCounter(Document):
    """How often one action happened for one subject in one fixed time window.

    ``key`` names the action, a hash of the subject (an email or client address, never
    stored in clear) and the window. MongoDB deletes the counter once ``expires_at``
    (the window's end) has passed, through the TTL index.
    """

    key: str = Field(max_length=200)
    hits: int = 0
    expires_at: datetime

    class Settings:
        name = "rate_limit_counters"
        indexes = [
            IndexModel([("key", pymongo.ASCENDING)], name="key_unique", unique=True),
            IndexModel(
                [("expires_at", pymongo.ASCENDING)], name="expires_ttl", expireAfterSeconds=0
            ),
        ]
