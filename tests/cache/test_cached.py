"""``Cache`` and ``@cached`` on every backend: keys, tags, single-flight, signed entries."""

from __future__ import annotations

import asyncio

import pytest

from tests.cache.conftest import make_cache
from vibetuner.cache import MISSING, cached, invalidate_tags
from vibetuner.cache.decorator import use_cache


@pytest.fixture
def counted():
    """A slow computation that counts its runs."""
    runs: list[str] = []

    async def compute(name: str = "value") -> str:
        runs.append(name)
        await asyncio.sleep(0.05)
        return f"{name}-{len(runs)}"

    return compute, runs


async def test_fifty_concurrent_callers_of_a_cold_key_compute_it_once(use_backend, counted):
    compute, runs = counted
    async with use_backend() as backend:
        cache = make_cache(backend)
        results = await asyncio.gather(
            *(cache.get_or_set("cold", compute, ttl=60) for _ in range(50))
        )
    assert runs == ["value"]
    assert set(results) == {"value-1"}


async def test_two_processes_on_a_shared_backend_compute_a_cold_key_once(
    use_backend, backend_kind, counted
):
    compute, runs = counted
    async with use_backend() as first, use_backend() as second:
        # Two caches with the same key and prefix, as two workers of one app have.
        key = b"k" * 32
        workers = [make_cache(first), make_cache(second)]
        for worker in workers:
            worker._key = key
        calls = [w.get_or_set("shared", compute, ttl=60) for w in workers for _ in range(25)]
        results = await asyncio.gather(*calls)
    if backend_kind == "memory":
        # Nothing is shared between processes in memory: each computes it once.
        assert runs == ["value", "value"]
        return
    assert runs == ["value"]
    assert set(results) == {"value-1"}


async def test_a_value_is_served_until_its_key_is_invalidated(use_backend, counted):
    compute, runs = counted
    async with use_backend() as backend:
        cache = make_cache(backend)
        assert await cache.get_or_set("k", compute) == "value-1"
        assert await cache.get_or_set("k", compute) == "value-1"
        await cache.delete("k")
        assert await cache.get("k") is MISSING
        assert await cache.get_or_set("k", compute) == "value-2"
    assert len(runs) == 2


async def test_invalidating_a_tag_drops_every_entry_with_it_and_only_those(use_backend):
    async with use_backend() as backend:
        cache = make_cache(backend)
        await cache.set("ada-notes", 3, tags=["notes:ada"])
        await cache.set("ada-summary", "three", tags=["notes:ada", "summaries"])
        await cache.set("bob-notes", 5, tags=["notes:bob"])
        await cache.invalidate_tags("notes:ada")
        assert await cache.get("ada-notes", tags=["notes:ada"]) is MISSING
        assert await cache.get("ada-summary", tags=["notes:ada", "summaries"]) is MISSING
        assert await cache.get("bob-notes", tags=["notes:bob"]) == 5
        # Stored again after the invalidation: valid again.
        await cache.set("ada-notes", 4, tags=["notes:ada"])
        assert await cache.get("ada-notes", tags=["notes:ada"]) == 4


async def test_an_invalidation_during_the_computation_is_not_hidden(use_backend):
    async with use_backend() as backend:
        cache = make_cache(backend)
        started = asyncio.Event()
        release = asyncio.Event()

        async def slow() -> str:
            started.set()
            await release.wait()
            return "old data"

        task = asyncio.ensure_future(cache.get_or_set("k", slow, tags=["t"]))
        await started.wait()
        await cache.invalidate_tags("t")  # the data changed while it was being read
        release.set()
        assert await task == "old data"
        assert await cache.get("k", tags=["t"]) is MISSING


async def test_an_error_reaches_every_caller_and_nothing_is_stored(use_backend):
    runs = []

    async def broken() -> str:
        runs.append(1)
        await asyncio.sleep(0.02)
        raise LookupError("the database is away")

    async with use_backend() as backend:
        cache = make_cache(backend)
        results = await asyncio.gather(
            *(cache.get_or_set("k", broken) for _ in range(10)), return_exceptions=True
        )
        assert all(isinstance(result, LookupError) for result in results)
        assert len(runs) == 1
        assert await cache.get("k") is MISSING


async def test_a_cancelled_caller_does_not_cancel_the_computation_others_wait_for(use_backend):
    async with use_backend() as backend:
        cache = make_cache(backend)

        async def slow() -> str:
            await asyncio.sleep(0.1)
            return "done"

        first = asyncio.ensure_future(cache.get_or_set("k", slow))
        second = asyncio.ensure_future(cache.get_or_set("k", slow))
        await asyncio.sleep(0.02)
        first.cancel()
        assert await second == "done"
        assert await cache.get("k") == "done"


async def test_an_entry_written_by_someone_without_the_key_is_ignored(use_backend):
    """Who can write to the Redis or MongoDB behind the cache cannot make the app unpickle."""
    import pickle

    class Boom:
        def __reduce__(self):
            return (exec, ("raise SystemExit('unpickled an attacker payload')",))

    async with use_backend() as backend:
        cache = make_cache(backend)
        payload = pickle.dumps(((), Boom()))
        await backend.set(cache.entry_key("k"), b"\0" * 32 + payload, 60)
        assert await cache.get("k") is MISSING
        assert await cache.get_or_set("k", _fresh) == "fresh"


async def _fresh() -> str:
    return "fresh"


async def test_the_decorator_keys_by_arguments_and_invalidates_by_tag(use_backend):
    runs: list[int] = []

    @cached(ttl=60, key="summary:{user_id}", tags=["notes:{user_id}"])
    async def summary(user_id: int) -> str:
        runs.append(user_id)
        return f"user {user_id}, run {len(runs)}"

    assert await summary(1) == "user 1, run 1"  # no cache running: just called
    async with use_backend() as backend:
        use_cache(make_cache(backend))
        try:
            assert await summary(1) == "user 1, run 2"
            assert await summary(1) == "user 1, run 2"
            assert await summary(2) == "user 2, run 3"
            await invalidate_tags("notes:1")
            assert await summary(1) == "user 1, run 4"
            assert await summary(2) == "user 2, run 3"
            await summary.invalidate(2)
            assert await summary(2) == "user 2, run 5"
        finally:
            use_cache(None)


async def test_the_default_key_tells_arguments_apart(use_backend):
    @cached()
    async def double(n: int, *, label: str = "") -> str:
        return f"{label}{n * 2}"

    async with use_backend() as backend:
        use_cache(make_cache(backend))
        try:
            assert [await double(1), await double(2), await double(2, label="x")] == [
                "2",
                "4",
                "x4",
            ]
        finally:
            use_cache(None)


def test_the_decorator_refuses_a_plain_function():
    with pytest.raises(TypeError, match="async"):

        @cached()
        def plain() -> int:
            return 1
