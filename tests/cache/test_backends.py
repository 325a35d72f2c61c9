"""Each backend stores, expires, adds, deletes and counts the same way."""

from __future__ import annotations

import asyncio

from vibetuner.cache.backends import MemoryBackend


async def test_values_come_back_in_the_order_asked(use_backend):
    async with use_backend() as backend:
        await backend.set("a", b"one", 60)
        await backend.set("b", b"two", None)
        assert await backend.get_many(["b", "missing", "a"]) == [b"two", None, b"one"]
        assert await backend.get_many([]) == []


async def test_a_value_expires(use_backend):
    async with use_backend() as backend:
        await backend.set("short", b"x", 0.2)
        assert await backend.get_many(["short"]) == [b"x"]
        await asyncio.sleep(0.35)
        assert await backend.get_many(["short"]) == [None]


async def test_add_stores_only_when_nothing_live_is_there(use_backend):
    async with use_backend() as backend:
        assert await backend.add("lock", b"1", 0.3)
        assert not await backend.add("lock", b"2", 0.3)
        assert await backend.get_many(["lock"]) == [b"1"]
        await asyncio.sleep(0.45)
        assert await backend.add("lock", b"3", 5)  # the expired one is replaced
        assert await backend.get_many(["lock"]) == [b"3"]


async def test_concurrent_adds_let_exactly_one_through(use_backend):
    async with use_backend() as backend:
        results = await asyncio.gather(*(backend.add("race", b"x", 5) for _ in range(20)))
        assert results.count(True) == 1


async def test_delete(use_backend):
    async with use_backend() as backend:
        await backend.set("a", b"1", 60)
        await backend.set("b", b"2", 60)
        await backend.delete(["a", "never-there"])
        assert await backend.get_many(["a", "b"]) == [None, b"2"]


async def test_counters_count_atomically_and_read_as_digits(use_backend):
    async with use_backend() as backend:
        assert await backend.incr("tag") == 1
        counts = await asyncio.gather(*(backend.incr("tag") for _ in range(20)))
        assert sorted(counts) == list(range(2, 22))
        assert await backend.get_many(["tag"]) == [b"21"]


def test_the_memory_backend_is_bounded_by_its_size_and_drops_the_oldest():
    memory = MemoryBackend(max_bytes=100)
    for name in "abcdef":
        memory.set_now(name, b"x" * 29, None)  # 30 bytes with the key
    assert memory.size <= 100
    assert [memory.get_now(name) is not None for name in "abcdef"] == [False] * 3 + [True] * 3
    memory.get_now("d")  # used: now the newest
    memory.set_now("g", b"x" * 29, None)
    assert memory.get_now("d") is not None and memory.get_now("e") is None
    memory.set_now("huge", b"x" * 500, None)  # larger than the whole cache: not kept
    assert memory.get_now("huge") is None and len(memory) == 3
