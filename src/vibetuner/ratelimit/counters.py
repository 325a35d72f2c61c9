"""Where the counters live: the app's MongoDB database, Redis, or this process.

Every backend does the same thing in one round trip: add an amount to each of several
counters and return their new values, giving a counter its expiry time when it is created, so
that no counter outlives its window (MongoDB: the TTL index; Redis: ``EXPIREAT`` in the
same script; in process: a sweep).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from vibetuner.errors import ConfigurationError


class Counter(Protocol):
    """A store of counters that expire."""

    async def incr(self, keys: Sequence[tuple[str, float, int]]) -> list[int]:
        """Add ``amount`` to each ``(key, expires_at, amount)`` counter; their new values,
        in order."""
        ...

    async def close(self) -> None:
        """Let go of connections."""
        ...


class MemoryCounter:
    """Counters in this process only (tests, a single worker). Expired counters are swept
    at most once a second, so memory holds only the windows still running."""

    def __init__(self) -> None:
        self.counts: dict[str, list[float]] = {}
        self._next_sweep = 0.0

    async def incr(self, keys: Sequence[tuple[str, float, int]]) -> list[int]:
        now = time.time()
        if now >= self._next_sweep:
            self._next_sweep = now + 1
            self.counts = {k: v for k, v in self.counts.items() if v[1] > now}
        values = []
        for key, expires_at, amount in keys:
            entry = self.counts.get(key)
            if entry is None or entry[1] <= now:
                entry = self.counts[key] = [0, expires_at]
            entry[0] += amount
            values.append(int(entry[0]))
        return values

    async def close(self) -> None:
        self.counts.clear()


class MongoCounter:
    """Counters in the app's database (``rate_limit_counters``), shared by every worker.

    Each counter is one atomic ``find_one_and_update`` with ``upsert``; several go out
    at once. The TTL index deletes a counter once its window is over (the in-memory
    development database applies TTL indexes too, on each read).
    """

    async def incr(self, keys: Sequence[tuple[str, float, int]]) -> list[int]:
        from vibetuner.models.rate_limit import RateLimitCounter

        collection = RateLimitCounter.get_pymongo_collection()
        if len(keys) == 1:
            return [await self._incr_one(collection, *keys[0])]
        return list(await asyncio.gather(*(self._incr_one(collection, *key) for key in keys)))

    @staticmethod
    async def _incr_one(collection: Any, key: str, expires_at: float, amount: int) -> int:
        update = {
            "$inc": {"hits": amount},
            # A second past the window's end: the counter is never removed while a hit
            # of its window is still being counted.
            "$setOnInsert": {"expires_at": datetime.fromtimestamp(expires_at + 1, UTC)},
        }
        try:
            doc = await collection.find_one_and_update(
                {"key": key}, update, upsert=True, return_document=ReturnDocument.AFTER
            )
        except DuplicateKeyError:
            # Two first hits raced to insert the counter; now it exists, so this updates it.
            doc = await collection.find_one_and_update(
                {"key": key}, update, upsert=True, return_document=ReturnDocument.AFTER
            )
        # None only when the window ended and its counter expired in between: this hit
        # was the window's last, and counts alone.
        return int(doc["hits"]) if doc is not None else amount

    async def close(self) -> None:
        return None


# Adds ARGV[2i - 1] to KEYS[i]; a key that this call created gets its expiry (ARGV[2i],
# Unix seconds) in the same atomic step, so no counter is ever left without one.
INCR_SCRIPT = """
local values = {}
for i, key in ipairs(KEYS) do
  local amount = tonumber(ARGV[2 * i - 1])
  local value = redis.call('INCRBY', key, amount)
  if value == amount then
    redis.call('EXPIREAT', key, ARGV[2 * i])
  end
  values[i] = value
end
return values
"""


class RedisCounter:
    """Counters in Redis (``REDIS_URL``), shared by every worker; one script call for
    all the counters a hit needs."""

    def __init__(self, url: str) -> None:
        try:
            import coredis
        except ImportError:
            raise ConfigurationError(
                'rate limits on Redis need coredis: pip install "vibetuner[redis]"'
            ) from None
        self.client: Any = coredis.Redis.from_url(url, decode_responses=False)
        self.script: Any = self.client.register_script(INCR_SCRIPT)
        self._entered = False

    async def open(self) -> None:
        """Connect: coredis wants its client entered by the task that outlives the
        requests sharing it (the app's lifespan), before they start."""
        if not self._entered:
            await self.client.__aenter__()
            self._entered = True

    async def incr(self, keys: Sequence[tuple[str, float, int]]) -> list[int]:
        args: list[int] = []
        for _, expires_at, amount in keys:
            args += (amount, int(expires_at) + 1)
        values = await self.script(keys=[key for key, _, _ in keys], args=args)
        return [int(value) for value in values]

    async def close(self) -> None:
        if self._entered:
            self._entered = False
            await self.client.__aexit__(None, None, None)
