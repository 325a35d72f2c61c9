"""``CacheFeature``: the app's cache, its page middleware and the ``{% cache %}`` tag."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from starlette.middleware import Middleware

from vibetuner.cache.backends import Backend, MemoryBackend
from vibetuner.cache.decorator import current_cache, use_cache
from vibetuner.cache.fragments import FragmentCacheExtension, FragmentStore
from vibetuner.cache.mongo_backend import CacheEntry, MongoBackend
from vibetuner.cache.pages import PageCacheMiddleware
from vibetuner.cache.store import Cache
from vibetuner.features import Feature

if TYPE_CHECKING:
    from beanie import Document

    from vibetuner.config import Settings
    from vibetuner.context import AppContext

logger = logging.getLogger("vibetuner.cache")


def backend_for(settings: Settings) -> Backend:
    """The backend ``CACHE_BACKEND`` names (not yet connected)."""
    if settings.cache_backend == "redis":
        from vibetuner.cache.redis_backend import RedisBackend

        assert settings.redis_url is not None  # check_settings said so
        return RedisBackend(settings.redis_url.get_secret_value())
    if settings.cache_backend == "mongodb":
        return MongoBackend()
    return MemoryBackend(settings.cache_memory_max_bytes)


class CacheFeature(Feature):
    """A cache on ``CACHE_BACKEND``: ``@cached``, ``cache_page``, ``cache_control`` and
    ``{% cache %}``; the app context keeps it (``context.get(Cache)``)."""

    name = "cache"

    def models(self) -> Sequence[type[Document]]:
        """The TTL collection of the MongoDB backend."""
        return [CacheEntry]

    def middleware(self) -> Sequence[Middleware]:
        """Serves and stores cached pages; applies ``cache_control`` policies."""
        return [Middleware(PageCacheMiddleware)]

    def check_settings(self, settings: Settings) -> list[str]:
        """Redis needs ``REDIS_URL`` and its client."""
        if settings.cache_backend != "redis":
            return []
        if settings.redis_url is None:
            return ["CACHE_BACKEND=redis needs REDIS_URL"]
        if importlib.util.find_spec("coredis") is None:
            return ['CACHE_BACKEND=redis needs coredis: pip install "vibetuner[redis]"']
        return []

    async def check_ready(self, context: AppContext) -> list[str]:
        """The shared backend answers."""
        cache = context.find(Cache)
        if cache is None or not cache.backend.shared:
            return []
        try:
            await cache.backend.get_many([cache.tag_key("ready")])
        except Exception as exc:
            # The error's name only: a connection error may quote the URL and its password.
            backend = context.settings.cache_backend
            return [f"the cache ({backend}) does not answer: {type(exc).__name__}"]
        return []

    @asynccontextmanager
    async def lifespan(self, context: AppContext) -> AsyncIterator[None]:
        """Connect the backend, publish the cache, and keep fragments in step."""
        from vibetuner.services.keys import derive_key

        settings = context.settings
        backend = backend_for(settings)
        opener = getattr(backend, "open", None)
        if opener is not None:
            await opener()
        cache = Cache(
            backend,
            signing_key=derive_key(settings, "cache entries"),
            prefix=settings.cache_prefix or settings.app_name,
            default_ttl=settings.cache_default_ttl,
            lock_seconds=settings.cache_lock_seconds,
        )
        env = context.templates.env
        if FragmentCacheExtension.identifier not in env.extensions:
            env.add_extension(FragmentCacheExtension)
        store = FragmentStore(cache, settings.cache_memory_max_bytes)
        env.fragment_store = store  # type: ignore[attr-defined]
        context.provide(cache)
        use_cache(cache)
        syncing = None
        if backend.shared:
            syncing = asyncio.create_task(
                _sync_fragments(store, settings.cache_fragment_sync_seconds)
            )
        try:
            yield
        finally:
            if syncing is not None:
                syncing.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await syncing
            if current_cache() is cache:
                use_cache(None)
            env.fragment_store = None  # type: ignore[attr-defined]
            context.withdraw(Cache)
            await cache.close()


async def _sync_fragments(store: FragmentStore, every: float) -> None:
    """Pick up tags invalidated by other processes, every ``every`` seconds."""
    while True:
        await asyncio.sleep(every)
        try:
            await store.sync()
        except Exception as exc:  # the backend is away: fragments expire by their TTL
            logger.warning("fragment tags not read from the cache: %s", type(exc).__name__)
