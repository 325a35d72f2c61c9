"""Declaring jobs: ``@task`` and ``@cron``, and how their arguments travel.

A job is an async function whose first parameter is the app's context (``AppContext``:
settings, the blob store, the mailer ...); it is passed when the job runs, never stored.
Declaring a job registers it nowhere: the feature or app that owns it lists it
(``JobsFeature(jobs=[...])``, or a feature's ``jobs()``).

A job's arguments are checked against its function's signature when it is queued, and
stored as JSON: Beanie documents go by id (a parameter annotated with a ``Document``
class gets the document back, loaded fresh, when the job runs), ``datetime``s and ids
as text. Anything else that JSON cannot hold is refused at once with
``JobArgumentError``, in the code that queued it.
"""

from __future__ import annotations

import inspect
import json
import types
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, get_type_hints, overload

from vibetuner.context import AppContext
from vibetuner.errors import JobArgumentError
from vibetuner.jobs.observers import carried_headers
from vibetuner.jobs.queue import check_known, queue_of
from vibetuner.request_id import current_request_id

JobFunction = Callable[..., Awaitable[Any]]


class JobCannotRun(Exception):
    """Raised by (or for) a job that no retry can help: it goes to the dead letters at once.

    A document argument that was deleted since, arguments that no longer fit the
    function; a job may raise it itself for input it will never accept.
    """


@dataclass(eq=False)
class JobTask:
    """A declared job: its function and how it runs."""

    fn: JobFunction
    name: str
    max_attempts: int = 5
    #: First retry after ``backoff`` seconds, then twice as long each time.
    backoff: float = 2.0
    max_backoff: float = 600.0
    #: Seconds one attempt may take (None: no limit).
    timeout: float | None = 300.0
    #: A cron expression (5 fields, or 7 with seconds and years) for periodic jobs.
    schedule: str | None = None
    _signature: inspect.Signature | None = field(default=None, repr=False)
    _documents: dict[str, type[Any]] | None = field(default=None, repr=False)
    _validated: JobFunction | None = field(default=None, repr=False)

    async def enqueue(
        self,
        context: AppContext,
        /,
        *args: Any,
        delay: float | timedelta | None = None,
        at: datetime | None = None,
        key: str | None = None,
        **kwargs: Any,
    ) -> str | None:
        """Queue the job on the queue of ``context``'s app; its id, or None when ``key``
        was already queued. The job runs as ``job(context, *args, **kwargs)``.

        ``delay`` (seconds or a ``timedelta``) or ``at`` (an aware ``datetime``) put it
        off; ``key`` makes it idempotent: the same key is queued once (for a day).
        Raises ``JobArgumentError`` for arguments the function does not take or that
        cannot be stored, ``ConfigurationError`` for a job the app's ``JobsFeature`` was
        not given, and ``JobQueueUnavailable`` when the broker is down.
        """
        if not isinstance(context, AppContext):
            raise TypeError(
                f"{self.name}: enqueue takes the app's context first: "
                "await job.enqueue(context, ...)"
            )
        if delay is not None and at is not None:
            raise JobArgumentError("give either delay or at, not both")
        stored_args, stored_kwargs = self.encode(args, kwargs)
        seconds = _seconds_until(delay, at)
        queue = queue_of(context)
        check_known(queue, self)
        return await queue.enqueue(
            self, stored_args, stored_kwargs, seconds, key, current_request_id(), carried_headers()
        )

    def encode(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[list[Any], dict[str, Any]]:
        """Check the arguments against the function and turn them into JSON values."""
        try:
            self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise JobArgumentError(f"{self.name}: {exc}") from None
        try:
            encoded = json.loads(json.dumps([list(args), kwargs], default=_to_json))
        except (TypeError, ValueError) as exc:
            raise JobArgumentError(f"{self.name}: the arguments cannot be stored: {exc}") from None
        return encoded[0], encoded[1]

    async def decode(self, args: list[Any], kwargs: dict[str, Any]) -> inspect.BoundArguments:
        """The stored arguments as the function takes them (documents loaded again)."""
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as exc:  # the function changed since the job was queued
            raise JobCannotRun(f"the stored arguments no longer fit: {exc}") from None
        for name, model in self.document_parameters.items():
            if name in bound.arguments and bound.arguments[name] is not None:
                document = await model.get(bound.arguments[name])
                if document is None:
                    raise JobCannotRun(f"{model.__name__} {bound.arguments[name]} no longer exists")
                bound.arguments[name] = document
        return bound

    async def run(self, context: AppContext, args: list[Any], kwargs: dict[str, Any]) -> Any:
        """Run once with ``context`` and the stored arguments, converted to the annotated
        types (the context is passed as it is)."""
        bound = await self.decode(args, kwargs)
        if self._validated is None:
            from pydantic import ConfigDict, validate_call

            self._validated = validate_call(config=ConfigDict(arbitrary_types_allowed=True))(
                _context_unchecked(self.fn)
            )
        return await self._validated(context, *bound.args, **bound.kwargs)

    @property
    def signature(self) -> inspect.Signature:
        """The job's own parameters: the function's, without the context."""
        if self._signature is None:
            self._signature = _without_context(inspect.signature(self.fn))
        return self._signature

    @property
    def document_parameters(self) -> dict[str, type[Any]]:
        """Parameters annotated with a Beanie ``Document`` class, by name."""
        if self._documents is None:
            from beanie import Document

            try:
                hints = get_type_hints(_context_unchecked(self.fn))
            except Exception:  # annotations that cannot be resolved: none are documents
                hints = {}
            self._documents = {
                name: hint
                for name, hint in hints.items()
                if inspect.isclass(hint) and issubclass(hint, Document)
            }
        return self._documents

    def retry_delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1, 2, ...)."""
        return float(min(self.backoff * 2 ** (attempt - 1), self.max_backoff))

    async def __call__(self, context: AppContext, /, *args: Any, **kwargs: Any) -> Any:
        """Run the function right here (tests, scripts), without the queue."""
        return await self.fn(context, *args, **kwargs)


@overload
def task(fn: JobFunction, /) -> JobTask: ...


@overload
def task(
    *,
    name: str | None = None,
    max_attempts: int = 5,
    backoff: float = 2.0,
    max_backoff: float = 600.0,
    timeout: float | None = 300.0,
) -> Callable[[JobFunction], JobTask]: ...


def task(
    fn: JobFunction | None = None,
    /,
    *,
    name: str | None = None,
    max_attempts: int = 5,
    backoff: float = 2.0,
    max_backoff: float = 600.0,
    timeout: float | None = 300.0,
) -> Any:
    """Declare an async function as a job: ``@task`` or ``@task(max_attempts=3)``.

    The function's first parameter is the app's context. ``await my_job.enqueue(context,
    ...)`` queues it, once its owner lists it (``JobsFeature(jobs=[...])``). A failed
    attempt is retried after ``backoff`` seconds, doubling each time (at most
    ``max_backoff``), until ``max_attempts``; then it is kept as a ``FailedJob``.
    """

    def declare(function: JobFunction) -> JobTask:
        _check_takes_context(function)
        return JobTask(
            fn=function,
            name=name or f"{function.__module__}.{function.__qualname__}",
            max_attempts=max_attempts,
            backoff=backoff,
            max_backoff=max_backoff,
            timeout=timeout,
        )

    return declare(fn) if fn is not None else declare


def cron(
    schedule: str,
    *,
    name: str | None = None,
    max_attempts: int = 1,
    timeout: float | None = 300.0,
) -> Callable[[JobFunction], JobTask]:
    """Declare a periodic job: ``@cron("0 3 * * *")`` runs it every day at 03:00 UTC.

    Each tick runs once, however many workers there are. The function takes the app's
    context and nothing else.
    """
    from crontab import CronTab

    try:
        CronTab(schedule)
    except ValueError as exc:
        raise ValueError(f"{schedule!r} is not a cron expression: {exc}") from None

    def declare(function: JobFunction) -> JobTask:
        _check_takes_context(function)
        own = _without_context(inspect.signature(function)).parameters.values()
        if any(p.default is inspect.Parameter.empty for p in own):
            raise TypeError(
                f"periodic job {function.__qualname__} must take only the context: "
                f"async def {function.__name__}(context)"
            )
        return JobTask(
            fn=function,
            name=name or f"{function.__module__}.{function.__qualname__}",
            max_attempts=max_attempts,
            timeout=timeout,
            schedule=schedule,
        )

    return declare


def seconds_to_next(schedule: str, now: datetime | None = None) -> float:
    """Seconds from ``now`` to the next tick of a cron expression (UTC)."""
    from crontab import CronTab

    moment = now or datetime.now(UTC)
    return float(CronTab(schedule).next(now=moment, default_utc=True))


def _check_takes_context(function: JobFunction) -> None:
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    parameters = list(inspect.signature(function).parameters.values())
    if not parameters or parameters[0].kind not in positional:
        raise TypeError(
            f"job {function.__qualname__} must take the app's context as its first "
            f"parameter: async def {function.__name__}(context, ...)"
        )


def _without_context(signature: inspect.Signature) -> inspect.Signature:
    """The signature without its first parameter (the context)."""
    return signature.replace(parameters=list(signature.parameters.values())[1:])


def _context_unchecked(function: JobFunction) -> JobFunction:
    """``function`` with no annotation on its context parameter, for ``validate_call``.

    The context is passed as it is: validating it would make pydantic build a schema
    of the whole ``AppContext``. A copy of the function (same code, globals and
    defaults), so the job's other annotations resolve where it was written.
    """
    if not inspect.isfunction(function):
        return function
    first = next(iter(inspect.signature(function).parameters))
    copy = types.FunctionType(
        function.__code__,
        function.__globals__,
        function.__name__,
        function.__defaults__,
        function.__closure__,
    )
    copy.__kwdefaults__ = function.__kwdefaults__
    copy.__qualname__ = function.__qualname__
    copy.__module__ = function.__module__
    copy.__annotations__ = {k: v for k, v in function.__annotations__.items() if k != first}
    return copy


def _to_json(value: Any) -> Any:
    from beanie import Document
    from bson import ObjectId

    if isinstance(value, Document):
        if value.id is None:
            raise TypeError(f"a {type(value).__name__} that was never saved has no id")
        return str(value.id)
    if isinstance(value, ObjectId):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _seconds_until(delay: float | timedelta | None, at: datetime | None) -> float:
    if isinstance(delay, timedelta):
        return max(0.0, delay.total_seconds())
    if delay is not None:
        if delay < 0:
            raise JobArgumentError("delay must not be negative")
        return float(delay)
    if at is not None:
        if at.tzinfo is None:
            raise JobArgumentError("at must be a timezone-aware datetime")
        return max(0.0, (at - datetime.now(UTC)).total_seconds())
    return 0.0
