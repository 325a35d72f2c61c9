"""``RateLimitFeature``: limits on routes and app-wide, counted where every worker sees them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from starlette.middleware import Middleware

from vibetuner.errors import ConfigurationError
from vibetuner.features import ExceptionHandler, Feature
from vibetuner.ratelimit.limiter import Limiter

if TYPE_CHECKING:
    from vibetuner.config import Settings
    from vibetuner.context import AppContext


class RateLimitFeature(Feature):
    """Rate limits: ``@rate_limit`` on routes, the defaults per kind of request
    (``RATE_LIMIT_UNSAFE``, ``RATE_LIMIT_PAGES``, ``RATE_LIMIT_API``), 429 answers with
    ``Retry-After`` and the ``RateLimit`` headers.

    Counters live in MongoDB (the app's database, also the in-memory one), in Redis when
    ``REDIS_URL`` is set, or in process: ``RATE_LIMIT_BACKEND``. The sign-in limits use
    the same limiter. Its backend being away does not make the app unready: the limits
    are skipped (logged) meanwhile, only the sign-in limits refuse.
    """

    name = "ratelimit"

    def middleware(self) -> Sequence[Middleware]:
        from vibetuner.ratelimit.middleware import RateLimitMiddleware

        return [Middleware(RateLimitMiddleware)]

    def exception_handlers(self) -> Mapping[type[Exception] | int, ExceptionHandler]:
        from vibetuner.ratelimit.answer import rate_limited_handler
        from vibetuner.ratelimit.limiter import RateLimited

        return {RateLimited: rate_limited_handler}

    def check_settings(self, settings: Settings) -> list[str]:
        if settings.rate_limit_backend == "redis" and settings.redis_url is None:
            return ["RATE_LIMIT_BACKEND=redis needs REDIS_URL"]
        return []

    @asynccontextmanager
    async def lifespan(self, context: AppContext) -> AsyncIterator[None]:
        router = getattr(context.links, "router", None)
        if router is not None:
            check_decorator_order(router.routes)
        limiter = open_limiter(context)
        open_counter = getattr(limiter.counter, "open", None)
        if open_counter is not None:
            await open_counter()
        context.provide(limiter, as_type=Limiter)
        try:
            yield
        finally:
            context.withdraw(Limiter)
            await limiter.close()


def open_limiter(context: AppContext) -> Limiter:
    """The limiter ``RATE_LIMIT_BACKEND`` names (``auto``: Redis with ``REDIS_URL``, else
    MongoDB)."""
    from vibetuner.ratelimit.counters import MemoryCounter, MongoCounter, RedisCounter

    settings = context.settings
    backend = settings.rate_limit_backend
    if backend == "auto":
        backend = "redis" if settings.redis_url is not None else "mongodb"
    if backend == "redis":
        if settings.redis_url is None:
            raise ConfigurationError("RATE_LIMIT_BACKEND=redis needs REDIS_URL")
        counter = RedisCounter(settings.redis_url.get_secret_value())
        return Limiter(counter, "redis", leases=True)
    if backend == "memory":
        return Limiter(MemoryCounter(), "memory")
    return Limiter(MongoCounter(), "mongodb", leases=True)


def check_decorator_order(routes: Iterable[Any]) -> None:
    """Refuse to start when ``@rate_limit`` sits above a route decorator: the route got
    the function without the limit, which would limit nothing."""
    from vibetuner.ratelimit.route import DECORATED

    for route in routes:
        endpoint = getattr(route, "endpoint", None)
        if endpoint is not None and endpoint in DECORATED:
            raise ConfigurationError(
                f"@rate_limit is above the route decorator of {endpoint.__qualname__} "
                f"({getattr(route, 'path', '?')}), so it limits nothing: put it below"
            )
        check_decorator_order(getattr(route, "routes", ()))
