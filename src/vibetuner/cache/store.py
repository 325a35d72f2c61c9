"""``Cache``: values on a backend, with tags, signed entries and single-flight.

Entries are pickled and signed (HMAC-SHA256 with a key derived from ``SESSION_KEY``), so
whoever can write to the Redis or MongoDB behind the cache still cannot make the app
unpickle bytes of their choosing: an entry whose signature does not check out is a miss.

Tags are counters on the backend. An entry keeps the counters of its tags as they were
when it was computed; invalidating a tag adds one to its counter, so every entry written
before is stale from then on, in every process, without listing or deleting them.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import pickle
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

from vibetuner.cache.backends import Backend

logger = logging.getLogger("vibetuner.cache")

T = TypeVar("T")
MAC_BYTES = 32
# Keys longer than this are stored by their hash (MongoDB's _id and Redis keys stay small).
LONGEST_PLAIN_KEY = 200
# How often a process that waits for another one's computation looks for its result.
POLL_SECONDS = 0.02


class _Unreachable(Exception):
    """The backend failed; the caller computes without the cache."""


async def _reachable(operation: Awaitable[T]) -> T:
    """``await operation``, its failure turned into ``_Unreachable`` (and logged)."""
    try:
        return await operation
    except Exception as exc:
        logger.warning("the cache does not answer: %s", type(exc).__name__)
        raise _Unreachable from exc


class Missing:
    """The value of a miss (None can be a cached value)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING = Missing()


class Cache:
    """A cache on ``backend``; one per app, made by ``CacheFeature`` at startup.

    ``prefix`` namespaces every key (apps sharing a Redis use different ones),
    ``default_ttl`` is the lifetime of entries stored without one, and ``lock_seconds``
    how long other processes wait for the one computing a cold key.
    """

    def __init__(
        self,
        backend: Backend,
        *,
        signing_key: bytes,
        prefix: str = "cache",
        default_ttl: float = 300,
        lock_seconds: float = 10,
    ) -> None:
        self.backend = backend
        self.prefix = prefix
        self.default_ttl = default_ttl
        self.lock_seconds = lock_seconds
        self._key = signing_key
        self._flights: dict[str, asyncio.Task[Any]] = {}
        #: Called with the tags and keys invalidated (the fragment cache listens).
        self.on_invalidate: list[Callable[[Sequence[str], Sequence[str]], None]] = []

    # --- keys and entries ---------------------------------------------------------------

    def entry_key(self, key: str) -> str:
        """The backend key of the entry ``key``."""
        if len(key) > LONGEST_PLAIN_KEY:
            key = "sha256:" + hashlib.sha256(key.encode("utf-8")).hexdigest()
        return f"{self.prefix}:k:{key}"

    def tag_key(self, tag: str) -> str:
        """The backend key of the counter of ``tag``."""
        if len(tag) > LONGEST_PLAIN_KEY:
            tag = "sha256:" + hashlib.sha256(tag.encode("utf-8")).hexdigest()
        return f"{self.prefix}:t:{tag}"

    def _seal(self, value: Any, versions: Sequence[int]) -> bytes:
        payload = pickle.dumps((tuple(versions), value), protocol=pickle.HIGHEST_PROTOCOL)
        return hmac.new(self._key, payload, hashlib.sha256).digest() + payload

    def _open(self, raw: bytes) -> tuple[tuple[int, ...], Any] | None:
        mac, payload = raw[:MAC_BYTES], raw[MAC_BYTES:]
        if not hmac.compare_digest(mac, hmac.new(self._key, payload, hashlib.sha256).digest()):
            logger.warning("a cache entry with a wrong signature was ignored")
            return None
        try:
            versions, value = pickle.loads(payload)  # noqa: S301 -- signed by this app
        except Exception:  # an entry of an older code version that no longer loads
            return None
        return tuple(versions), value

    @staticmethod
    def _versions(raw: Sequence[bytes | None]) -> tuple[int, ...]:
        return tuple(int(value) if value else 0 for value in raw)

    # --- reading and writing ------------------------------------------------------------

    async def _read(self, key: str, tags: Sequence[str]) -> tuple[Any, tuple[int, ...]]:
        """The value (or MISSING) and the current counters of ``tags``, in one round trip."""
        raw = await self.backend.get_many([self.entry_key(key), *map(self.tag_key, tags)])
        versions = self._versions(raw[1:])
        if raw[0] is None:
            return MISSING, versions
        opened = self._open(raw[0])
        if opened is None or opened[0] != versions:
            return MISSING, versions  # a tag was invalidated since it was stored
        return opened[1], versions

    async def get(self, key: str, *, tags: Sequence[str] = ()) -> Any:
        """The value stored under ``key``, or ``MISSING``.

        ``tags`` are those the value was stored with; a value stored before one of them
        was invalidated is a miss.
        """
        value, _ = await self._read(key, tags)
        return value

    async def set(
        self,
        key: str,
        value: Any,
        *,
        ttl: float | None = None,
        tags: Sequence[str] = (),
        versions: Sequence[int] | None = None,
    ) -> None:
        """Store ``value`` (anything pickle takes) under ``key`` for ``ttl`` seconds."""
        if versions is None:
            versions = self._versions(await self.backend.get_many([*map(self.tag_key, tags)]))
        lifetime = self.default_ttl if ttl is None else ttl
        await self.backend.set(self.entry_key(key), self._seal(value, versions), lifetime)

    async def delete(self, *keys: str) -> None:
        """Invalidate the entries ``keys``."""
        await self.backend.delete([self.entry_key(key) for key in keys])
        for listener in self.on_invalidate:
            listener((), keys)

    async def invalidate_tags(self, *tags: str) -> None:
        """Invalidate every entry stored with any of ``tags``, in every process."""
        for tag in dict.fromkeys(tags):
            await self.backend.incr(self.tag_key(tag))
        for listener in self.on_invalidate:
            listener(tags, ())

    async def tag_versions(self, tags: Iterable[str]) -> tuple[int, ...]:
        """The current counters of ``tags``."""
        return self._versions(await self.backend.get_many([self.tag_key(t) for t in tags]))

    # --- computing ----------------------------------------------------------------------

    async def get_or_set(
        self,
        key: str,
        compute: Callable[[], Awaitable[T]],
        *,
        ttl: float | None = None,
        tags: Sequence[str] = (),
    ) -> T:
        """The value under ``key``; on a miss, ``await compute()`` once and store it.

        Single-flight: concurrent callers in this process for the same cold key share one
        computation, and with a shared backend other processes wait for the one that
        took the key's lock (up to ``lock_seconds``) rather than computing it too. An
        error in ``compute`` reaches every caller waiting on it and nothing is stored. A
        caller that is cancelled does not cancel the computation the others wait for.
        """
        flight = self._flights.get(key)
        if flight is None:
            flight = asyncio.ensure_future(self._fill(key, compute, ttl, tags))
            self._flights[key] = flight
            flight.add_done_callback(lambda done: self._landed(key, done))
        result: T = await asyncio.shield(flight)
        return result

    def _landed(self, key: str, flight: asyncio.Task[Any]) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]
        if not flight.cancelled():
            flight.exception()  # retrieved: callers that were cancelled never awaited it

    async def _fill(
        self,
        key: str,
        compute: Callable[[], Awaitable[T]],
        ttl: float | None,
        tags: Sequence[str],
    ) -> T:
        try:
            return await self._fill_from_backend(key, compute, ttl, tags)
        except _Unreachable:
            # The cache is down: the value is computed as if there were no cache.
            return await compute()

    async def _fill_from_backend(
        self,
        key: str,
        compute: Callable[[], Awaitable[T]],
        ttl: float | None,
        tags: Sequence[str],
    ) -> T:
        value, versions = await self._read_or_raise(key, tags)
        if value is not MISSING:
            return value  # type: ignore[no-any-return]
        if not self.backend.shared:
            return await self._compute(key, compute, ttl, tags, versions)
        lock = f"{self.entry_key(key)}:lock"
        deadline = time.monotonic() + self.lock_seconds
        while not await _reachable(self.backend.add(lock, b"1", self.lock_seconds)):
            # Another process computes it: wait for its result, not longer than the lock.
            await asyncio.sleep(POLL_SECONDS)
            value, versions = await self._read_or_raise(key, tags)
            if value is not MISSING:
                return value  # type: ignore[no-any-return]
            if time.monotonic() >= deadline:
                return await self._compute(key, compute, ttl, tags, versions)
        try:
            value, versions = await self._read_or_raise(key, tags)  # stored meanwhile?
            if value is not MISSING:
                return value  # type: ignore[no-any-return]
            return await self._compute(key, compute, ttl, tags, versions)
        finally:
            with contextlib.suppress(Exception):  # it expires by itself
                await self.backend.delete([lock])

    async def _read_or_raise(self, key: str, tags: Sequence[str]) -> tuple[Any, tuple[int, ...]]:
        return await _reachable(self._read(key, tags))

    async def _compute(
        self,
        key: str,
        compute: Callable[[], Awaitable[T]],
        ttl: float | None,
        tags: Sequence[str],
        versions: Sequence[int],
    ) -> T:
        # The tag counters were read before computing: an invalidation while it runs
        # leaves the stored value already stale instead of hiding the change.
        value = await compute()
        try:
            await self.set(key, value, ttl=ttl, tags=tags, versions=versions)
        except Exception:  # the value is right; only the next caller pays again
            logger.warning("a value could not be stored in the cache", exc_info=True)
        return value

    async def close(self) -> None:
        """Wait for nothing: cancel computations in flight and close the backend."""
        for flight in list(self._flights.values()):
            flight.cancel()
        await self.backend.close()
