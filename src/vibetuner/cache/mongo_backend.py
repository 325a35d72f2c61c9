"""The MongoDB backend (``CACHE_BACKEND=mongodb``): entries in a TTL collection.

Every process on the same database shares the entries; this works on a real server and
on the in-memory development database alike. MongoDB's TTL monitor deletes expired
entries about once a minute, so reads also check ``expires_at`` themselves (the
development database has no TTL monitor at all; writes over an expired entry replace it).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pymongo
from beanie import Document
from pymongo import IndexModel
from pymongo.errors import DuplicateKeyError


class CacheEntry(Document):
    """One cached value (``value``) or counter (``counter``), deleted once ``expires_at`` passes."""

    id: str  # type: ignore[assignment]  # the cache key, not an ObjectId
    value: bytes | None = None
    counter: int | None = None
    expires_at: datetime | None = None

    class Settings:
        name = "cache_entries"
        indexes = [
            IndexModel(
                [("expires_at", pymongo.ASCENDING)], name="expires_ttl", expireAfterSeconds=0
            ),
        ]


def _expiry(ttl: float | None) -> datetime | None:
    return None if ttl is None else datetime.now(UTC) + timedelta(seconds=ttl)


def _live(now: datetime) -> dict[str, Any]:
    return {"$or": [{"expires_at": None}, {"expires_at": {"$gt": now}}]}


class MongoBackend:
    """Cache entries in the ``cache_entries`` collection of the app's database."""

    shared = True

    def __init__(self) -> None:
        self._collection: Any = None

    @property
    def collection(self) -> Any:
        """The collection (known once Beanie has registered ``CacheEntry``)."""
        if self._collection is None:
            self._collection = CacheEntry.get_pymongo_collection()
        return self._collection

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """The values of ``keys`` in order (one ``find``)."""
        if not keys:
            return []
        now = datetime.now(UTC)
        query = {"_id": {"$in": list(keys)}, **_live(now)}
        found: dict[str, bytes] = {}
        async for doc in self.collection.find(query):
            if doc.get("value") is not None:
                found[doc["_id"]] = bytes(doc["value"])
            elif doc.get("counter") is not None:
                found[doc["_id"]] = str(doc["counter"]).encode()
        return [found.get(key) for key in keys]

    async def set(self, key: str, value: bytes, ttl: float | None) -> None:
        """Replace the entry ``key`` (upsert)."""
        entry = {"value": value, "counter": None, "expires_at": _expiry(ttl)}
        await self.collection.replace_one({"_id": key}, entry, upsert=True)

    async def add(self, key: str, value: bytes, ttl: float) -> bool:
        """Insert the entry unless a live one exists (an expired one is replaced)."""
        now = datetime.now(UTC)
        update = {"$set": {"value": value, "counter": None, "expires_at": _expiry(ttl)}}
        try:
            # Matches only an expired entry; with none, the upsert inserts, and a live
            # entry makes that insert fail on the unique _id.
            await self.collection.update_one(
                {"_id": key, "expires_at": {"$lte": now}}, update, upsert=True
            )
        except DuplicateKeyError:
            return False
        return True

    async def delete(self, keys: Sequence[str]) -> None:
        """Remove the entries ``keys``."""
        if keys:
            await self.collection.delete_many({"_id": {"$in": list(keys)}})

    async def incr(self, key: str) -> int:
        """Add one to the counter ``key`` (atomic ``$inc``, upserted)."""
        update = {"$inc": {"counter": 1}, "$set": {"expires_at": None, "value": None}}
        after = pymongo.ReturnDocument.AFTER
        try:
            doc = await self.collection.find_one_and_update(
                {"_id": key}, update, upsert=True, return_document=after
            )
        except DuplicateKeyError:
            # Two first increments raced to insert the counter; now it exists.
            doc = await self.collection.find_one_and_update(
                {"_id": key}, update, upsert=True, return_document=after
            )
        return int(doc["counter"])

    async def close(self) -> None:
        """Nothing to close: the app's database connection is closed by the app."""
