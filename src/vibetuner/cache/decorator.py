"""``@cached``: a coroutine function's results in the app's cache, and the app's cache itself.

::

    @cached(ttl=60, key="note-summary:{user.id}", tags=["notes:{user.id}"])
    async def note_summary(user: UserModel) -> Summary: ...

    await invalidate_tags(f"notes:{user.id}")   # after a note changes

``key`` and each tag are format strings filled with the call's arguments by name
(``{user.id}``), or functions taking the same arguments; without ``key``, the function's
module and name and the ``repr`` of its arguments make it. Outside a running app with
``CacheFeature`` (scripts, unit tests) the function is simply called.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, ParamSpec, TypeVar

from vibetuner.cache.store import Cache
from vibetuner.errors import ConfigurationError

logger = logging.getLogger("vibetuner.cache")

P = ParamSpec("P")
T = TypeVar("T")
KeySpec = str | Callable[..., str] | None
TagsSpec = Sequence[str] | Callable[..., Sequence[str]]

_current: Cache | None = None


def use_cache(cache: Cache | None) -> None:
    """Make ``cache`` the one ``@cached`` functions and the helpers below use (None: none)."""
    global _current
    _current = cache


def current_cache() -> Cache | None:
    """The running app's cache, or None outside an app with ``CacheFeature``."""
    return _current


def require_cache() -> Cache:
    """The running app's cache; a clear error without ``CacheFeature``."""
    if _current is None:
        raise ConfigurationError("the cache is not running: add CacheFeature() to the app")
    return _current


async def invalidate(*keys: str) -> None:
    """Invalidate the entries ``keys`` (nothing to do without a running cache).

    When the cache does not answer, the failure is logged and the entries expire with
    their lifetime: the change that led here has been made, and the request goes on.
    """
    if _current is not None:
        try:
            await _current.delete(*keys)
        except Exception:
            logger.error("cache entries %s were not invalidated", keys, exc_info=True)


async def invalidate_tags(*tags: str) -> None:
    """Invalidate every entry stored with any of ``tags``, in every process sharing the cache.

    A cache that does not answer is logged, as :func:`invalidate` says.
    """
    if _current is not None:
        try:
            await _current.invalidate_tags(*tags)
        except Exception:
            logger.error("cache tags %s were not invalidated", tags, exc_info=True)


def cached(
    ttl: float | None = None, key: KeySpec = None, tags: TagsSpec = ()
) -> Callable[[Callable[P, Awaitable[T]]], CachedFunction[P, T]]:
    """Cache the results of an ``async def`` function (see the module's description).

    ``ttl`` is in seconds (None: ``CACHE_DEFAULT_TTL``). Concurrent calls for a cold key
    run the function once (single-flight). The wrapped function has ``invalidate(...)``,
    taking the same arguments, to drop the entry of one call.
    """

    def wrap(function: Callable[P, Awaitable[T]]) -> CachedFunction[P, T]:
        if not inspect.iscoroutinefunction(function):
            raise TypeError(f"@cached wraps async functions; {function.__qualname__} is not one")
        return CachedFunction(function, ttl, key, tags)

    return wrap


class CachedFunction(Generic[P, T]):
    """An ``async def`` function whose results are cached; call it as the function."""

    def __init__(
        self, function: Callable[P, Awaitable[T]], ttl: float | None, key: KeySpec, tags: TagsSpec
    ) -> None:
        self.function = function
        self.ttl = ttl
        self.key_spec = key
        self.tags_spec = tags
        self.signature = inspect.signature(function)
        functools.update_wrapper(self, function)

    def _arguments(self, args: Any, kwargs: Any) -> dict[str, Any]:
        bound = self.signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return dict(bound.arguments)

    def key_of(self, *args: P.args, **kwargs: P.kwargs) -> str:
        """The cache key of this call."""
        if callable(self.key_spec):
            return str(self.key_spec(*args, **kwargs))
        if isinstance(self.key_spec, str):
            return self.key_spec.format(**self._arguments(args, kwargs))
        described = repr(sorted(self._arguments(args, kwargs).items()))
        digest = hashlib.sha256(described.encode("utf-8")).hexdigest()[:32]
        return f"{self.function.__module__}.{self.function.__qualname__}:{digest}"

    def tags_of(self, *args: P.args, **kwargs: P.kwargs) -> list[str]:
        """The tags of this call."""
        if callable(self.tags_spec):
            return list(self.tags_spec(*args, **kwargs))
        if not self.tags_spec:
            return []
        values = self._arguments(args, kwargs)
        return [tag.format(**values) for tag in self.tags_spec]

    async def __call__(self, *args: P.args, **kwargs: P.kwargs) -> T:
        cache = _current
        if cache is None:
            return await self.function(*args, **kwargs)
        return await cache.get_or_set(
            self.key_of(*args, **kwargs),
            lambda: self.function(*args, **kwargs),
            ttl=self.ttl,
            tags=self.tags_of(*args, **kwargs),
        )

    async def invalidate(self, *args: P.args, **kwargs: P.kwargs) -> None:
        """Drop the cached result of the call with these arguments."""
        await invalidate(self.key_of(*args, **kwargs))
