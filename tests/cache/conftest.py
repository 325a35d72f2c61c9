"""Cache fixtures: a real redis-server, and a ``Cache`` on each backend."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.jobs.redis_server import RedisServer
from vibetuner.cache.backends import Backend, MemoryBackend
from vibetuner.cache.store import Cache

# Every backend: in process, Redis, MongoDB in memory, MongoDB through the real client
# (skipped without TEST_MONGODB_URL; scripts/test-wire.sh sets it).
BACKENDS = ["memory", "redis", "mongodb-memory", "mongodb-server"]


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(Path(tmp_path_factory.mktemp("cache-redis")))
    server.start()
    yield server
    server.stop()


@asynccontextmanager
async def opened(kind: str, redis_url: str | None) -> AsyncIterator[Backend]:
    """A connected backend of ``kind``, closed in the same task (coredis needs that)."""
    backend: Backend
    if kind == "memory":
        backend = MemoryBackend(1024 * 1024)
    elif kind == "redis":
        from vibetuner.cache.redis_backend import RedisBackend

        assert redis_url is not None
        redis = RedisBackend(redis_url)
        await redis.open()
        await redis._client.flushdb()
        backend = redis
    else:
        from vibetuner.cache.mongo_backend import MongoBackend

        backend = MongoBackend()
    try:
        yield backend
    finally:
        await backend.close()


@pytest.fixture
def mongo_backend(request: pytest.FixtureRequest) -> str:
    """The database of the MongoDB backend's runs (see ``backend_kind``)."""
    from vibetuner.testing import real_mongodb_url

    if "backend_kind" not in request.fixturenames:
        return getattr(request, "param", None) or ("mongodb" if real_mongodb_url() else "memory")
    kind = request.getfixturevalue("backend_kind")
    if kind == "mongodb-server":
        if real_mongodb_url() is None:
            pytest.skip("real MongoDB run skipped: TEST_MONGODB_URL is not set")
        return "mongodb"
    return "memory"


@pytest.fixture
async def cache_db(vibetuner_db: Any) -> AsyncIterator[Any]:
    """The test database with ``CacheEntry`` registered."""
    from vibetuner.cache.mongo_backend import CacheEntry
    from vibetuner.context import document_models
    from vibetuner.mongo import init_models

    await init_models(vibetuner_db, document_models([CacheEntry]))
    yield vibetuner_db


@pytest.fixture(params=BACKENDS)
def backend_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def use_backend(backend_kind: str, request: pytest.FixtureRequest) -> Callable[[], Any]:
    """``async with use_backend() as backend:`` -- a backend of this run's kind."""
    redis_url = None
    if backend_kind == "redis":
        redis_url = request.getfixturevalue("redis_server").url
    elif backend_kind.startswith("mongodb"):
        request.getfixturevalue("cache_db")
    return lambda: opened(backend_kind, redis_url)


def make_cache(backend: Backend, **options: Any) -> Cache:
    return Cache(backend, signing_key=secrets.token_bytes(32), prefix="test", **options)
