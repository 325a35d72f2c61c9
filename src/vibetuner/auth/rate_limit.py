"""What the sign-in limits count: one mailbox however its address is written.

The limits themselves are ``vibetuner.ratelimit``'s (the app's limiter and backend).
"""

from __future__ import annotations


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


async def enforce(name: str, subject: str, *, limit: int, window_seconds: int) -> None:
    """Count one attempt at ``name`` by ``subject``; raise :class:`RateLimitExceeded` (a
    ``RateLimited`` with the decisions for the headers) past ``limit`` per ``window_seconds``.

    For sign-in steps counted where no app context is at hand (two-factor codes, API
    tokens, passkey ceremonies): the counters are in the app's MongoDB database, shared by
    every worker, as the magic-link limits are without ``RateLimitFeature``.
    """
    from vibetuner.ratelimit.counters import MongoCounter
    from vibetuner.ratelimit.limiter import Limiter
    from vibetuner.rates import Rate

    await Limiter(MongoCounter(), "mongodb").enforce(name, subject, [Rate(limit, window_seconds)])
