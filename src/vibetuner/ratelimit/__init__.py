"""Rate limits: on any route or router, app-wide defaults per kind of request, 429 answers
with ``Retry-After`` and the ``RateLimit-Policy`` / ``RateLimit`` headers, counters in
MongoDB, Redis or in process.

``rate_limit("10/minute", key="user")`` is the decorator (below the route's) and, as
``.depends``, a dependency; ``RateLimitFeature`` adds the defaults, the headers and the
429 answers to an app (it is one of the default features). Names load on first use, so
the services can import the limiter without the web layer.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "Decision": "vibetuner.ratelimit.limiter",
    "Limiter": "vibetuner.ratelimit.limiter",
    "Rate": "vibetuner.rates",
    "parse_rates": "vibetuner.rates",
    "RateLimit": "vibetuner.ratelimit.route",
    "rate_limit": "vibetuner.ratelimit.route",
    "RateLimitFeature": "vibetuner.ratelimit.feature",
    "RateLimited": "vibetuner.ratelimit.answer",
    "by_address": "vibetuner.ratelimit.keys",
    "by_session": "vibetuner.ratelimit.keys",
    "by_user": "vibetuner.ratelimit.keys",
    "limiter_of": "vibetuner.ratelimit.state",
}
__all__ = [
    "Decision",
    "Limiter",
    "Rate",
    "RateLimit",
    "RateLimitFeature",
    "RateLimited",
    "by_address",
    "by_session",
    "by_user",
    "limiter_of",
    "parse_rates",
    "rate_limit",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'vibetuner.ratelimit' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


if TYPE_CHECKING:
    from vibetuner.ratelimit.feature import RateLimitFeature
    from vibetuner.ratelimit.keys import by_address, by_session, by_user
    from vibetuner.ratelimit.limiter import Decision, Limiter, RateLimited
    from vibetuner.ratelimit.route import RateLimit, rate_limit
    from vibetuner.ratelimit.state import limiter_of
    from vibetuner.rates import Rate, parse_rates
