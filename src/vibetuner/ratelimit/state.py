"""The app's limiter (kept by ``RateLimitFeature``) and what a request was counted against."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any

from vibetuner.ratelimit.counters import MongoCounter
from vibetuner.ratelimit.limiter import Decision, Limiter

if TYPE_CHECKING:
    from vibetuner.context import AppContext

# Where a request's decisions wait for the middleware to turn them into headers.
SCOPE_KEY = "vibetuner.ratelimit"


def limiter_of(context: AppContext) -> Limiter:
    """The app's limiter: ``RateLimitFeature``'s, else counters in the app's database.

    The fallback keeps the sign-in limits working in an app without the feature.
    """
    found = context.find(Limiter)
    if found is None:
        # Stateless: the counters are documents of the app's database.
        return Limiter(MongoCounter(), "mongodb")
    return found


def record(scope: MutableMapping[str, Any], decisions: list[Decision]) -> None:
    """Keep ``decisions`` with the request, for the response's headers."""
    scope.setdefault(SCOPE_KEY, []).extend(decisions)


def recorded(scope: MutableMapping[str, Any]) -> list[Decision]:
    """The decisions made for this request so far."""
    found: list[Decision] = scope.get(SCOPE_KEY, [])
    return found
