"""Who watches jobs being queued and run: tracing and metrics (``vibetuner.observability``).

Observers are per process, as the tracer and meter providers they feed are: a job
queued in this process carries what they add to its headers (a trace context), and each
attempt run here is entered into every observer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from vibetuner.jobs.registry import JobTask
    from vibetuner.jobs.runner import Outcome


class AttemptObserver(Protocol):
    """Watches jobs being queued and run."""

    def headers(self) -> dict[str, str]:
        """What a job queued here carries to its attempts (a trace context)."""
        ...

    def attempt(
        self, job: JobTask, number: int, headers: dict[str, str] | None
    ) -> AbstractContextManager[Callable[[Outcome, float], None]]:
        """Entered around one attempt; the callable it gives is told how it ended."""
        ...


_observers: list[AttemptObserver] = []


def observe_attempts(observer: AttemptObserver) -> None:
    """Add ``observer`` to every job queued and every attempt run in this process."""
    if observer not in _observers:
        _observers.append(observer)


def stop_observing(observer: AttemptObserver) -> None:
    """Take ``observer`` off (the observability feature's shutdown, tests)."""
    if observer in _observers:
        _observers.remove(observer)


def carried_headers() -> dict[str, str] | None:
    """The headers a job queued here carries (None when nothing observes jobs)."""
    if not _observers:
        return None
    headers: dict[str, str] = {}
    for observer in _observers:
        headers.update(observer.headers())
    return headers or None


@contextmanager
def observed(
    job: JobTask, number: int, headers: dict[str, str] | None
) -> Iterator[list[Callable[[Outcome, float], None]]]:
    """Enter every observer around one attempt; yields the callables to tell the outcome."""
    with ExitStack() as stack:
        yield [stack.enter_context(o.attempt(job, number, headers)) for o in _observers]


def observing() -> bool:
    """True when something observes jobs in this process."""
    return bool(_observers)
