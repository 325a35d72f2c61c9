"""The limiter: fixed windows aligned to the clock, counted in one backend round trip.

A limit's counter key is its name, a hash of the subject and the window, so subjects
(addresses, user ids, a function's values) are never stored in clear, two names or two
kinds of subject can never share a counter, and each window's counter is a new key
that expires when the window ends.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from vibetuner.errors import DatabaseUnavailable, RateLimitExceeded
from vibetuner.ratelimit.counters import Counter
from vibetuner.ratelimit.leases import Lease, Leases, block_size
from vibetuner.rates import Rate

KEY_PREFIX = "ratelimit"


class LimiterUnavailable(DatabaseUnavailable):
    """The counters' backend (MongoDB or Redis) did not answer (503 where not caught)."""

    code = "rate_limit_unavailable"


@dataclass(slots=True)  # not frozen: built for every rate of every request, kept cheap
class Decision:
    """One rate of one limit after a hit: the count in the window and its reset time.

    ``count`` is the hit's place in the window's count, over every worker.
    """

    name: str
    rate: Rate
    count: int
    reset_after: int

    @property
    def exceeded(self) -> bool:
        """True when this hit went over the rate."""
        return self.count > self.rate.amount

    @property
    def remaining(self) -> int:
        """Hits left in the window (never below 0)."""
        return max(0, self.rate.amount - self.count)


def counter_prefix(name: str, subject: str) -> str:
    """The start of every counter key of ``subject`` under the limit ``name``.

    The digest covers the name and the subject with a separator neither can fake (the
    name is the developer's, the subject may come from the client); the readable name
    in front is cut short, which the digest makes harmless. The braces keep a limit's
    counters in one Redis Cluster slot (one script call).
    """
    digest = hashlib.sha256(f"{name}\x00{subject}".encode()).hexdigest()[:40]
    return f"{KEY_PREFIX}:{name[:60]}:{{{digest}}}"


class Limiter:
    """Counts hits of subjects against named rates on one :class:`Counter` backend.

    With ``leases`` (the app's limiter on MongoDB or Redis) :meth:`hit` takes blocks of
    places from the shared counters and counts most hits in this worker
    (:mod:`vibetuner.ratelimit.leases`); :meth:`enforce` always counts each hit in the
    backend.
    """

    def __init__(self, counter: Counter, backend: str, *, leases: bool = False) -> None:
        self.counter = counter
        #: ``mongodb``, ``redis`` or ``memory``.
        self.backend = backend
        #: This worker's blocks of places, or None when every hit goes to the backend.
        self.leases = Leases() if leases else None

    async def hit(
        self,
        name: str,
        subject: str,
        rates: Sequence[Rate],
        *,
        cost: int = 1,
        exact: bool = False,
    ) -> list[Decision]:
        """Count one hit (of ``cost``) of ``subject`` against each of ``rates``.

        ``exact`` counts it in the backend even when this worker holds places (the
        sign-in limits: a small quota, each attempt counted where every worker sees it).
        """
        if not rates:
            return []
        if exact or self.leases is None:
            now = time.time()
            prefix = counter_prefix(name, subject)
            keys = []
            for rate in rates:
                window = int(now // rate.seconds)
                keys.append(
                    (f"{prefix}:{rate.seconds}:{window}", (window + 1) * rate.seconds, cost)
                )
            counts = await self._incr(keys)
            return [
                Decision(name, rate, count, max(1, math.ceil(end - now)))
                for rate, count, (_, end, _) in zip(rates, counts, keys, strict=True)
            ]
        # Most hits: every rate from places this worker holds, no backend call.
        leases = self.leases
        held_as = subject if len(subject) <= 128 else hashlib.sha256(subject.encode()).hexdigest()
        now = time.time()
        taken: list[int] = []
        for rate in rates:
            lease = leases.held.get((name, held_as, rate.seconds, rate.amount))
            if lease is None or lease.window != int(now // rate.seconds):
                break
            place = lease.take(cost)
            if place is None:
                break
            taken.append(place)
        else:
            return [
                Decision(name, rate, place, rate.seconds - int(now % rate.seconds))
                for rate, place in zip(rates, taken, strict=True)
            ]
        return await self._hit_leased(leases, name, subject, held_as, rates, cost, now, taken)

    async def _hit_leased(
        self,
        leases: Leases,
        name: str,
        subject: str,
        held_as: str,
        rates: Sequence[Rate],
        cost: int,
        now: float,
        taken: list[int],
    ) -> list[Decision]:
        """:meth:`hit` for the rates after the ``taken`` ones, taking blocks where this
        worker's places run short. ``held_as`` is the subject in the leases' keys (a
        digest when it is long: a key function's value may be large)."""
        counts: list[int | None] = [*taken, *[None] * (len(rates) - len(taken))]
        ends = [(int(now // rate.seconds) + 1) * rate.seconds for rate in rates]
        while True:
            now = time.time()
            wanted: list[tuple[int, Lease | None, int, int]] = []
            waits: list[asyncio.Future[None]] = []
            for i, rate in enumerate(rates):
                if counts[i] is not None:
                    continue
                window = int(now // rate.seconds)
                ends[i] = end = (window + 1) * rate.seconds
                key = (name, held_as, rate.seconds, rate.amount)
                lease = leases.get(key, window, end, now)
                if lease is None:
                    wanted.append((i, None, window, cost))
                    continue
                place = lease.take(cost)
                if place is not None:
                    counts[i] = place
                elif lease.seen >= rate.amount:
                    # Every place of the window is handed out: refused without asking.
                    counts[i] = lease.seen + cost
                elif lease.pending is not None:
                    waits.append(lease.pending)  # a block is on its way: wait for it
                else:
                    size = max(cost, block_size(rate.amount, lease.seen))
                    wanted.append((i, lease, window, size))
            if wanted:
                await self._take_blocks(name, subject, rates, cost, wanted, counts)
            if not waits:
                break
            await asyncio.wait(waits)
        now = time.time()
        return [
            Decision(name, rate, count or 0, max(1, math.ceil(end - now)))
            for rate, count, end in zip(rates, counts, ends, strict=True)
        ]

    async def _take_blocks(
        self,
        name: str,
        subject: str,
        rates: Sequence[Rate],
        cost: int,
        wanted: list[tuple[int, Lease | None, int, int]],
        counts: list[int | None],
    ) -> None:
        """Take the ``wanted`` blocks in one backend call; this hit uses the first
        ``cost`` places of each, its lease keeps the rest up to the rate's amount."""
        prefix = counter_prefix(name, subject)
        keys = []
        loop = asyncio.get_running_loop()
        for i, lease, window, size in wanted:
            rate = rates[i]
            keys.append((f"{prefix}:{rate.seconds}:{window}", (window + 1) * rate.seconds, size))
            if lease is not None:
                lease.pending = loop.create_future()
        try:
            values = await self._incr(keys)
        finally:
            for _, lease, _, _ in wanted:
                if lease is not None and lease.pending is not None:
                    lease.pending.set_result(None)
                    lease.pending = None
        for (i, lease, _, size), value in zip(wanted, values, strict=True):
            first = value - size + 1
            counts[i] = first + cost - 1
            if lease is not None:
                lease.seen = max(lease.seen, value)
                lease.add(first + cost, min(value, rates[i].amount))

    async def _incr(self, keys: Sequence[tuple[str, float, int]]) -> list[int]:
        try:
            return await self.counter.incr(keys)
        except Exception as exc:
            raise LimiterUnavailable(
                f"the {self.backend} rate-limit backend failed: {type(exc).__name__}: {exc}"
            ) from exc

    async def enforce(
        self, name: str, subject: str, rates: Sequence[Rate], *, cost: int = 1
    ) -> list[Decision]:
        """Count one hit in the backend (never from leased places); raise ``RateLimited``
        (a ``RateLimitExceeded``) when it is over."""
        decisions = await self.hit(name, subject, rates, cost=cost, exact=True)
        if any(d.exceeded for d in decisions):
            raise RateLimited(decisions)
        return decisions

    async def close(self) -> None:
        """Close the backend's connections; forget the leases."""
        if self.leases is not None:
            self.leases.clear()
        await self.counter.close()


def retry_after(decisions: Sequence[Decision]) -> int:
    """Seconds until every exceeded rate of ``decisions`` allows a hit again."""
    return max((d.reset_after for d in decisions if d.exceeded), default=0)


# --- the RateLimit headers (draft-ietf-httpapi-ratelimit-headers-10) --------------------
# Each rate a request was counted against is one policy, named after its limit and
# window: ``RateLimit-Policy: "pages/60s";q=300;w=60`` states the quota ``q`` per window
# ``w`` (seconds), ``RateLimit: "pages/60s";r=299;t=42`` the hits remaining ``r`` and the
# seconds ``t`` until the window resets. Both are Structured Field lists.


def _sf_string(text: str) -> str:
    """``text`` as a Structured Field string: printable ASCII, quotes and backslashes escaped."""
    printable = "".join(c if " " <= c <= "~" else "?" for c in text)
    return '"' + printable.replace("\\", "\\\\").replace('"', '\\"') + '"'


def policy_name(decision: Decision) -> str:
    """The policy's name: the limit's name and the window in seconds."""
    return _policy_name(decision.name, decision.rate.seconds)


# Limit names are the app's own (a bounded set); headers go on every counted answer.
@functools.lru_cache(maxsize=1024)
def _policy_name(name: str, seconds: int) -> str:
    return _sf_string(f"{name}/{seconds}s")


def rate_limit_headers(decisions: Sequence[Decision]) -> dict[str, str]:
    """The headers for ``decisions`` (empty when there are none); ``Retry-After`` when one
    of them is exceeded."""
    if not decisions:
        return {}
    policies = []
    states = []
    wait = 0
    for d in decisions:
        rate = d.rate
        policy = _policy_name(d.name, rate.seconds)
        policies.append(f"{policy};q={rate.amount};w={rate.seconds}")
        states.append(f"{policy};r={max(0, rate.amount - d.count)};t={d.reset_after}")
        if d.count > rate.amount and d.reset_after > wait:
            wait = d.reset_after
    headers = {"RateLimit-Policy": ", ".join(policies), "RateLimit": ", ".join(states)}
    if wait:
        headers["Retry-After"] = str(wait)
    return headers


class RateLimited(RateLimitExceeded):
    """A request went over one of its limits; ``decisions`` are every rate it was counted
    against (the headers list them all)."""

    def __init__(self, decisions: Sequence[Decision]) -> None:
        exceeded = [d.name for d in decisions if d.exceeded]
        super().__init__(", ".join(dict.fromkeys(exceeded)), retry_after(decisions))
        self.decisions = list(decisions)

    def response_headers(self) -> dict[str, str]:
        return {**super().response_headers(), **rate_limit_headers(self.decisions)}
