"""The limiter: fixed windows aligned to the clock, counted in one backend round trip.

A limit's counter key is its name, a hash of the subject and the window, so subjects
(addresses, user ids, a function's values) are never stored in clear, two names or two
kinds of subject can never share a counter, and each window's counter is a new key
that expires when the window ends.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from vibetuner.errors import DatabaseUnavailable, RateLimitExceeded
from vibetuner.ratelimit.counters import Counter
from vibetuner.rates import Rate

KEY_PREFIX = "ratelimit"


class LimiterUnavailable(DatabaseUnavailable):
    """The counters' backend (MongoDB or Redis) did not answer (503 where not caught)."""

    code = "rate_limit_unavailable"


@dataclass(frozen=True)
class Decision:
    """One rate of one limit after a hit: the count in the window and its reset time."""

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
    """Counts hits of subjects against named rates on one :class:`Counter` backend."""

    def __init__(self, counter: Counter, backend: str) -> None:
        self.counter = counter
        #: ``mongodb``, ``redis`` or ``memory``.
        self.backend = backend

    async def hit(
        self, name: str, subject: str, rates: Sequence[Rate], *, cost: int = 1
    ) -> list[Decision]:
        """Count one hit (of ``cost``) of ``subject`` against each of ``rates``."""
        if not rates:
            return []
        now = time.time()
        prefix = counter_prefix(name, subject)
        keys = []
        for rate in rates:
            window = int(now // rate.seconds)
            keys.append((f"{prefix}:{rate.seconds}:{window}", (window + 1) * rate.seconds))
        try:
            counts = await self.counter.incr(keys, cost)
        except Exception as exc:
            raise LimiterUnavailable(
                f"the {self.backend} rate-limit backend failed: {type(exc).__name__}: {exc}"
            ) from exc
        return [
            Decision(name, rate, count, max(1, math.ceil(end - now)))
            for rate, count, (_, end) in zip(rates, counts, keys, strict=True)
        ]

    async def enforce(
        self, name: str, subject: str, rates: Sequence[Rate], *, cost: int = 1
    ) -> list[Decision]:
        """Count one hit; raise ``RateLimited`` (a ``RateLimitExceeded``) when it is over."""
        decisions = await self.hit(name, subject, rates, cost=cost)
        if any(d.exceeded for d in decisions):
            raise RateLimited(decisions)
        return decisions

    async def close(self) -> None:
        """Close the backend's connections."""
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
    return _sf_string(f"{decision.name}/{decision.rate.seconds}s")


def rate_limit_headers(decisions: Sequence[Decision]) -> dict[str, str]:
    """The headers for ``decisions`` (empty when there are none); ``Retry-After`` when one
    of them is exceeded."""
    if not decisions:
        return {}
    headers = {
        "RateLimit-Policy": ", ".join(
            f"{policy_name(d)};q={d.rate.amount};w={d.rate.seconds}" for d in decisions
        ),
        "RateLimit": ", ".join(
            f"{policy_name(d)};r={d.remaining};t={d.reset_after}" for d in decisions
        ),
    }
    wait = retry_after(decisions)
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
