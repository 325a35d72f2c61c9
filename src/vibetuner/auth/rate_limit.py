"""Fixed-window rate limits whose counters live in MongoDB.

Counting in the database (not in process memory) makes a limit hold across every app
process behind a load balancer. Each hit is one atomic ``find_one_and_update`` with
``upsert``, so concurrent hits never lose a count.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from vibetuner.errors import RateLimitExceeded
from vibetuner.models.rate_limit import RateLimitCounter


@dataclass(frozen=True)
class RateLimitState:
    """The count after a hit and the seconds left in its window."""

    count: int
    limit: int
    reset_after: int

    @property
    def exceeded(self) -> bool:
        """True when this hit went over the limit."""
        return self.count > self.limit


def mailbox_key(address: str) -> str:
    """The subject under which a per-address limit counts ``address``.

    Letter case and a ``+tag`` after the local part name the same mailbox at most
    providers (``Ada+1@X.example`` reaches ``ada@x.example``), so they share one counter.
    Only the limit folds them: the address stored and mailed stays the one given.
    """
    local, at, domain = address.strip().lower().rpartition("@")
    if not at:
        return address.strip().lower()
    base = local.split("+", 1)[0]
    return f"{base or local}@{domain}"


def counter_key(scope: str, subject: str, window: int) -> str:
    """The counter's key: the scope, a hash of the subject (never stored in clear), the window."""
    digest = hashlib.sha256(subject.encode("utf-8")).hexdigest()[:40]
    return f"{scope}:{digest}:{window}"


async def hit(scope: str, subject: str, *, limit: int, window_seconds: int) -> RateLimitState:
    """Count one attempt of ``subject`` in ``scope`` and return the new state."""
    now = time.time()
    window = int(now // window_seconds)
    window_end = (window + 1) * window_seconds
    key = counter_key(scope, subject, window)
    collection = RateLimitCounter.get_pymongo_collection()
    update = {
        "$inc": {"hits": 1},
        "$setOnInsert": {"expires_at": datetime.fromtimestamp(window_end, UTC)},
    }
    try:
        doc = await collection.find_one_and_update(
            {"key": key}, update, upsert=True, return_document=ReturnDocument.AFTER
        )
    except DuplicateKeyError:
        # Two first hits raced to insert the counter; now it exists, so this updates it.
        doc = await collection.find_one_and_update(
            {"key": key}, update, upsert=True, return_document=ReturnDocument.AFTER
        )
    if doc is None:  # cannot happen with upsert=True and ReturnDocument.AFTER
        raise RuntimeError(f"rate-limit counter {key!r} was not written")
    return RateLimitState(
        count=int(doc["hits"]), limit=limit, reset_after=max(1, math.ceil(window_end - now))
    )


async def enforce(scope: str, subject: str, *, limit: int, window_seconds: int) -> RateLimitState:
    """Count one attempt; raise :class:`RateLimitExceeded` when it goes over ``limit``."""
    state = await hit(scope, subject, limit=limit, window_seconds=window_seconds)
    if state.exceeded:
        raise RateLimitExceeded(scope, state.reset_after)
    return state
