"""The Redis backend (``CACHE_BACKEND=redis``): entries shared by every process on ``REDIS_URL``.

It uses coredis, the Redis client of the job queue too (``pip install "vibetuner[redis]"``).
Redis expires entries itself (``SET ... PX``); ``add`` is ``SET NX``, so two processes
never both take a single-flight lock.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class RedisBackend:
    """Cache entries in Redis."""

    shared = True

    def __init__(self, url: str) -> None:
        from coredis import Redis

        self._client: Any = Redis.from_url(url, decode_responses=False)
        self._entered = False

    async def open(self) -> None:
        """Connect (coredis clients are used inside ``async with``)."""
        await self._client.__aenter__()
        self._entered = True

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """The values of ``keys`` in order (one ``MGET``)."""
        if not keys:
            return []
        values = await self._client.mget(list(keys))
        return [None if value is None else bytes(value) for value in values]

    async def set(self, key: str, value: bytes, ttl: float | None) -> None:
        """``SET key value [PX ttl]``."""
        if ttl is None:
            await self._client.set(key, value)
        else:
            await self._client.set(key, value, px=max(1, int(ttl * 1000)))

    async def add(self, key: str, value: bytes, ttl: float) -> bool:
        """``SET key value NX PX ttl``."""
        from coredis.tokens import PureToken

        stored = await self._client.set(
            key, value, condition=PureToken.NX, px=max(1, int(ttl * 1000))
        )
        return bool(stored)

    async def delete(self, keys: Sequence[str]) -> None:
        """``DEL keys``."""
        if keys:
            await self._client.delete(list(keys))

    async def incr(self, key: str) -> int:
        """``INCR key``."""
        return int(await self._client.incr(key))

    async def close(self) -> None:
        """Close the connection pool."""
        if self._entered:
            self._entered = False
            await self._client.__aexit__(None, None, None)
