"""Leased places: blocks taken from the shared counter (real redis-server), counted in the
worker; exact near the limit, across windows and between workers that share a counter."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from vibetuner.ratelimit.counters import RedisCounter
from vibetuner.ratelimit.leases import MAX_BLOCK, Leases, block_size
from vibetuner.ratelimit.limiter import Limiter, LimiterUnavailable, RateLimited, counter_prefix
from vibetuner.rates import Rate

MINUTE = Rate(100, 60)


class Counting(RedisCounter):
    """The Redis counter, recording how many calls reached Redis."""

    calls = 0

    async def incr(self, keys: Any) -> list[int]:
        self.calls += 1
        return await super().incr(keys)


@asynccontextmanager
async def two_workers(redis_server: Any) -> AsyncIterator[list[Limiter]]:
    """Two limiters on one redis-server: two workers sharing their counters (coredis
    wants its client closed by the task that opened it, so not a fixture)."""
    limiters = []
    for _ in range(2):
        counter = Counting(redis_server.url)
        await counter.open()
        limiters.append(Limiter(counter, "redis", leases=True))
    try:
        yield limiters
    finally:
        for limiter in reversed(limiters):  # coredis clients close in reverse order
            await limiter.close()


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """``time.time`` at the start of a minute until the test moves ``clock[0]``."""
    clock = [(time.time() // 60 + 1) * 60 + 0.5]
    monkeypatch.setattr(time, "time", lambda: clock[0])
    return clock


async def stored(limiter: Limiter, name: str, subject: str, rate: Rate, now: float) -> int:
    """The counter's value in Redis for ``now``'s window (places handed out so far)."""
    key = f"{counter_prefix(name, subject)}:{rate.seconds}:{int(now // rate.seconds)}"
    value = await limiter.counter.client.get(key)  # type: ignore[attr-defined]
    return int(value or 0)


def test_blocks_shrink_to_one_place_near_the_limit_and_for_small_limits():
    assert block_size(100_000_000, 0) == MAX_BLOCK
    assert block_size(600, 0) == 37
    assert block_size(600, 590) == 1
    assert [block_size(n, 0) for n in (1, 5, 17, 31)] == [1, 1, 1, 1]


async def test_one_worker_counts_every_hit_exactly_and_asks_redis_seldom(
    redis_server, frozen_clock
):
    async with two_workers(redis_server) as workers:
        limiter = workers[0]
        counts = []
        for _ in range(MINUTE.amount + 5):
            [decision] = await limiter.hit("api", "session:a", [MINUTE])
            counts.append(decision.count)
        # Place n for the n-th hit: the remaining count in the headers is exact in one worker.
        assert counts[:100] == list(range(1, 101))
        assert all(count > 100 for count in counts[100:])
        # Blocks of 6, 5, 5 ... down to 1: far fewer calls than hits, and past the limit the
        # refusals need none.
        calls = limiter.counter.calls  # type: ignore[attr-defined]
        assert calls < 60, calls
        assert await stored(limiter, "api", "session:a", MINUTE, frozen_clock[0]) == 100


async def test_two_workers_never_pass_more_than_n_and_pass_n_while_both_get_hits(
    redis_server, frozen_clock
):
    async with two_workers(redis_server) as workers:
        passed = 0
        refused_by = set()
        for n in range(400):
            worker = n % 2 if n < 150 else (n // 7) % 2  # alternating, then in runs
            [decision] = await workers[worker].hit("api", "session:b", [MINUTE])
            if decision.exceeded:
                refused_by.add(worker)
            else:
                passed += 1
        assert refused_by == {0, 1}
        assert passed == MINUTE.amount


async def test_concurrent_bursts_in_two_workers_pass_exactly_n(redis_server, frozen_clock):
    async with two_workers(redis_server) as workers:

        async def burst(limiter: Limiter) -> list[bool]:
            hits = [limiter.hit("api", "session:c", [MINUTE]) for _ in range(150)]
            return [not d[0].exceeded for d in await asyncio.gather(*hits)]

        first, second = await asyncio.gather(burst(workers[0]), burst(workers[1]))
        assert sum(first) + sum(second) == MINUTE.amount


async def test_leases_end_with_their_window(redis_server, frozen_clock):
    async with two_workers(redis_server) as workers:
        limiter = workers[0]
        [first] = await limiter.hit("api", "session:d", [MINUTE])
        assert first.count == 1
        # The first hit took a block: the rest of it waits in this worker.
        assert await stored(limiter, "api", "session:d", MINUTE, frozen_clock[0]) == 6
        frozen_clock[0] += 60  # the next minute
        [next_window] = await limiter.hit("api", "session:d", [MINUTE])
        # Places of the minute before are not carried over: the count starts again.
        assert next_window.count == 1
        assert next_window.reset_after == 60
        assert await stored(limiter, "api", "session:d", MINUTE, frozen_clock[0]) == 6
        frozen_clock[0] += 1  # the sweep forgets the ended window's lease
        await limiter.hit("api", "session:other", [MINUTE])
        assert limiter.leases is not None
        assert {key[1] for key in limiter.leases.held} == {"session:d", "session:other"}
        assert all(
            lease.window == int(frozen_clock[0] // 60) for lease in limiter.leases.held.values()
        )


async def test_burst_and_sustained_rates_each_hold_with_leases(redis_server, frozen_clock):
    async with two_workers(redis_server) as workers:
        rates = [Rate(40, 1), Rate(100, 60)]
        seconds = []
        for _ in range(3):  # three seconds of 60 hits, alternating workers
            answers = [await workers[n % 2].hit("api", "session:e", rates) for n in range(60)]
            seconds.append(sum(not any(d.exceeded for d in a) for a in answers))
            frozen_clock[0] += 1
        # 40 a second; every hit counts against the minute, the refused ones too: its 100
        # run out in the second second.
        assert seconds == [40, 40, 0]


async def test_sign_in_limits_count_every_attempt_in_redis(redis_server, frozen_clock):
    async with two_workers(redis_server) as workers:
        limiter = workers[0]
        rate = Rate(5, 3600)
        for attempt in range(1, 6):
            await limiter.enforce("magic-link-email", "email:a@example.com", [rate])
            # No block taken: another worker sees this attempt at once.
            assert (
                await stored(
                    limiter, "magic-link-email", "email:a@example.com", rate, frozen_clock[0]
                )
                == attempt
            )
        with pytest.raises(RateLimited):
            await workers[1].enforce("magic-link-email", "email:a@example.com", [rate])


async def test_a_worker_keeps_counting_from_its_places_while_redis_is_away(
    frozen_clock, redis_server
):
    async with two_workers(redis_server) as workers:
        limiter = workers[0]
        await limiter.hit("api", "session:f", [MINUTE])  # took places 1 to 6
        redis_server.stop()
        try:
            held = [await limiter.hit("api", "session:f", [MINUTE]) for _ in range(5)]
            assert [d[0].count for d in held] == [2, 3, 4, 5, 6]
            with pytest.raises(LimiterUnavailable):
                await limiter.hit("api", "session:f", [MINUTE])
        finally:
            redis_server.start()


def test_leases_are_bounded_and_swept():
    leases = Leases(max_leases=100)
    now = 1_000_000.0
    for n in range(1000):
        leases.get(("api", f"address:{n}", 60, 10), int(now // 60), (now // 60 + 1) * 60, now)
    assert len(leases.held) == 100
    later = now + 120
    leases.get(("api", "address:x", 60, 10), int(later // 60), (later // 60 + 1) * 60, later)
    assert list(leases.held) == [("api", "address:x", 60, 10)]
