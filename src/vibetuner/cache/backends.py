"""Where cached bytes live: the backend contract and the in-process backend.

A backend stores opaque bytes under string keys, each with an optional lifetime. It
knows nothing of tags, serialization or single-flight (``vibetuner.cache.store`` adds
them), so each backend is a handful of small methods: in process (this module), Redis
(``redis_backend``) and MongoDB (``mongo_backend``).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Protocol


class Backend(Protocol):
    """What the cache needs from a store of bytes."""

    #: True when other processes see the same entries (Redis, MongoDB).
    shared: bool

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """The values of ``keys`` in order; None for a missing or expired key."""
        ...

    async def set(self, key: str, value: bytes, ttl: float | None) -> None:
        """Store ``value`` for ``ttl`` seconds (None: until evicted or deleted)."""
        ...

    async def add(self, key: str, value: bytes, ttl: float) -> bool:
        """Store ``value`` only if ``key`` holds nothing live; True when it was stored."""
        ...

    async def delete(self, keys: Sequence[str]) -> None:
        """Remove ``keys`` (missing ones are ignored)."""
        ...

    async def incr(self, key: str) -> int:
        """Add one to the counter ``key`` (0 when missing) and return it; never expires.

        A counter reads back through :meth:`get_many` as its decimal digits.
        """
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


class MemoryBackend:
    """An LRU dictionary in this process, bounded by the bytes it holds.

    Keys and values count towards ``max_bytes``; the least recently used entries go
    first when it is full, expired ones as soon as they are seen. Nothing is shared
    with other processes.
    """

    shared = False

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self._entries: OrderedDict[str, tuple[bytes, float | None]] = OrderedDict()

    def get_now(self, key: str) -> bytes | None:
        """The value of ``key`` without awaiting (the template tag's synchronous read)."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        value, expires = entry
        if expires is not None and expires <= time.monotonic():
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return value

    def set_now(self, key: str, value: bytes, ttl: float | None) -> None:
        """Store ``value`` without awaiting; evicts the oldest entries past ``max_bytes``."""
        self._drop(key)
        cost = len(key) + len(value)
        if cost > self.max_bytes:
            return  # larger than the whole cache: storing it would evict everything
        expires = None if ttl is None else time.monotonic() + ttl
        self._entries[key] = (value, expires)
        self.size += cost
        while self.size > self.max_bytes:
            self._drop(next(iter(self._entries)))

    def delete_now(self, keys: Sequence[str]) -> None:
        """Remove ``keys`` without awaiting."""
        for key in keys:
            self._drop(key)

    def clear_now(self) -> None:
        """Forget every entry."""
        self._entries.clear()
        self.size = 0

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self.size -= len(key) + len(entry[0])

    def __len__(self) -> int:
        return len(self._entries)

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """The values of ``keys`` in order; None for a missing or expired key."""
        return [self.get_now(key) for key in keys]

    async def set(self, key: str, value: bytes, ttl: float | None) -> None:
        """Store ``value`` for ``ttl`` seconds (None: until evicted)."""
        self.set_now(key, value, ttl)

    async def add(self, key: str, value: bytes, ttl: float) -> bool:
        """Store ``value`` unless ``key`` holds a live value."""
        if self.get_now(key) is not None:
            return False
        self.set_now(key, value, ttl)
        return True

    async def delete(self, keys: Sequence[str]) -> None:
        """Remove ``keys``."""
        self.delete_now(keys)

    async def incr(self, key: str) -> int:
        """Add one to the counter ``key`` and return it."""
        current = self.get_now(key)
        count = (int(current) if current else 0) + 1
        self.set_now(key, str(count).encode(), None)
        return count

    async def close(self) -> None:
        """Forget everything."""
        self.clear_now()
