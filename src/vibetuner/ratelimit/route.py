"""``rate_limit``: a limit on a route (decorator) or on a router (dependency)."""

# No ``from __future__ import annotations``: FastAPI reads the dependency's signature.

import functools
import inspect
import itertools
import logging
import sys
from collections.abc import Callable
from typing import Any, TypeVar
from weakref import WeakSet

from fastapi import Depends, Request

from vibetuner.ratelimit.keys import KeyFunction, KeyKind, subject_of
from vibetuner.ratelimit.limiter import LimiterUnavailable, RateLimited
from vibetuner.ratelimit.state import limiter_of, record
from vibetuner.rates import Rate, parse_rates

logger = logging.getLogger("vibetuner.ratelimit")
Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])
_PARAMETER = "_vibetuner_rate_limit_{}"
_numbers = itertools.count()
# Endpoints given to @rate_limit: when one of them is a route's endpoint itself, the
# decorator sat above the route's and limits nothing (checked at startup).
DECORATED: "WeakSet[Callable[..., Any]]" = WeakSet()


class RateLimit:
    """A named budget of ``rates`` per subject (see :func:`rate_limit`)."""

    def __init__(
        self, rates: tuple[Rate, ...], key: KeyKind | KeyFunction, name: str, cost: int
    ) -> None:
        self.rates = rates
        self.key = key
        self.name = name
        self.cost = cost
        self.named = False

    async def check(self, request: Request) -> None:
        """Count this request; raise :class:`RateLimited` when it is over a rate."""
        from vibetuner.web.context import get_context

        context = get_context(request)
        if not context.settings.rate_limit_enabled:
            return
        subject = await subject_of(request, self.key)
        limiter = limiter_of(context)
        try:
            decisions = await limiter.hit(self.name, subject, self.rates, cost=self.cost)
        except LimiterUnavailable as exc:
            # A limit protects the app; the backend being away must not take it down.
            logger.warning("rate limit %r not checked: %s", self.name, exc)
            return
        record(request.scope, decisions)
        if any(d.exceeded for d in decisions):
            raise RateLimited(decisions)

    @property
    def depends(self) -> Any:
        """``Depends(...)`` for ``APIRouter(dependencies=[...])`` or a route's ``dependencies``."""
        return Depends(self.check)

    def __call__(self, endpoint: Endpoint) -> Endpoint:
        """Put the limit on ``endpoint``; goes below ``@router.get(...)`` and the like."""
        if not self.named:  # the first endpoint names it; more endpoints share its budget
            self.name = f"{endpoint.__module__}.{endpoint.__qualname__}"
            self.named = True
        DECORATED.add(endpoint)
        parameter = _PARAMETER.format(next(_numbers))
        try:
            signature = inspect.signature(endpoint, eval_str=True)
        except NameError:
            signature = inspect.signature(endpoint)
        added = inspect.Parameter(
            parameter, inspect.Parameter.KEYWORD_ONLY, default=Depends(self.check)
        )
        parameters = list(signature.parameters.values())
        at = len(parameters)
        if parameters and parameters[-1].kind is inspect.Parameter.VAR_KEYWORD:
            at -= 1
        parameters.insert(at, added)

        if inspect.iscoroutinefunction(endpoint):

            @functools.wraps(endpoint)
            async def limited(*args: Any, **kwargs: Any) -> Any:
                kwargs.pop(parameter, None)
                return await endpoint(*args, **kwargs)

        else:

            @functools.wraps(endpoint)
            def limited(*args: Any, **kwargs: Any) -> Any:  # FastAPI runs it in a thread
                kwargs.pop(parameter, None)
                return endpoint(*args, **kwargs)

        limited.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
        return limited  # type: ignore[return-value]

    def __repr__(self) -> str:
        rates = ";".join(map(str, self.rates))
        return f"<RateLimit {self.name!r} {rates}>"


def rate_limit(
    rates: str,
    *,
    key: KeyKind | KeyFunction = "address",
    name: str | None = None,
    cost: int = 1,
) -> RateLimit:
    """A limit of ``rates`` (``"10/minute"``, ``"5/second;100/hour"``) per ``key``.

    ``key`` is ``"address"`` (the client address behind ``TRUSTED_PROXIES``),
    ``"user"`` (the signed-in user), ``"session"`` (the signed-in session) or a function
    of the request (sync or async) returning a string; requests without one count by
    address. ``name`` names the budget: limits of the same name share their counters
    (default: the decorated endpoint, or where ``rate_limit`` is called for a
    dependency). Each request counts ``cost``.

    As a decorator, below the route's::

        @router.post("/notes")
        @rate_limit("5/second;60/minute", key="user")
        async def create_note(...): ...

    As a dependency of a router or route: ``dependencies=[rate_limit("100/minute").depends]``.
    """
    if cost < 1:
        raise ValueError("cost must be at least 1")
    parsed = parse_rates(rates)
    if not parsed:
        raise ValueError("rate_limit needs at least one rate, such as 10/minute")
    if not isinstance(key, str) and not callable(key):
        raise TypeError("key must be address, user, session or a function of the request")
    if isinstance(key, str) and key not in ("address", "user", "session"):
        raise ValueError(
            f"unknown rate-limit key {key!r}: use address, user, session or a function"
        )
    if name is None:
        caller = sys._getframe(1)
        limit = RateLimit(
            parsed, key, f"{caller.f_globals.get('__name__')}:{caller.f_lineno}", cost
        )
    else:
        limit = RateLimit(parsed, key, name, cost)
        limit.named = True
    return limit
