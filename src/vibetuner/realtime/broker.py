"""Brokers: where a published event goes, and who in this process receives it.

A broker keeps, per process, the open subscriptions by channel, and hands each event to
those of its channel (``dispatch``). The in-process broker is the whole story with one
worker; the Redis broker (``redis_broker``) carries events between processes and keeps
the history there. Both keep a bounded history, so a browser that reconnects with
``Last-Event-ID`` gets what it missed, or is told it missed too much.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, Literal

from vibetuner.realtime.events import Event, EventId

logger = logging.getLogger("vibetuner.realtime")

#: vibetuner's own channel between workers (session ends); never sent to a browser.
CONTROL_CHANNEL = "vibetuner:control"
ControlHandler = Callable[[str], Coroutine[Any, Any, None]]


class Subscription:
    """One stream's channels and the events waiting to be sent to it.

    The buffer holds at most ``limit`` events: a client that reads slower than events
    arrive (or not at all) is dropped when it is full, so a stalled browser costs a
    bounded amount of memory, never a growing one. An idle subscription holds no buffer
    (thousands sit idle). ``ready`` is called when there is something to do (an event
    queued, or the subscription closed): the stream writes from there.
    """

    __slots__ = ("channels", "limit", "_queue", "closed", "quiet", "ready", "writing_since")

    def __init__(self, channels: Iterable[str], limit: int) -> None:
        self.channels = frozenset(channels)
        self.limit = limit
        self._queue: deque[Event] | None = None
        #: Why the subscription ended ("slow", "revoked", "shutdown" ...), or None.
        self.closed: str | None = None
        #: Nothing was queued since the last heartbeat round.
        self.quiet = True
        #: Called (with no argument) when an event is queued or the subscription closes.
        self.ready: Callable[[], None] | None = None
        #: When (loop time) the write under way began, or None: the hub drops a client
        #: whose write takes longer than REALTIME_SEND_TIMEOUT.
        self.writing_since: float | None = None

    def offer(self, event: Event) -> None:
        """Queue ``event``; a full buffer ends the subscription (the client is too slow)."""
        if self.closed is not None:
            return
        if self._queue is None:
            self._queue = deque()
        elif len(self._queue) >= self.limit:
            self.close("slow")
            return
        self._queue.append(event)
        self.quiet = False
        if self.ready is not None:
            self.ready()

    def close(self, reason: str) -> None:
        """End the subscription; its stream sends nothing more and closes."""
        if self.closed is not None:
            return
        self.closed = reason
        self._queue = None
        if self.ready is not None:
            self.ready()

    def pending(self) -> int:
        """How many events wait to be sent."""
        return 0 if self._queue is None else len(self._queue)

    def take(self) -> Event | None:
        """The next event to send, or None when none waits (or the subscription closed)."""
        queue = self._queue
        if not queue:
            return None
        event = queue.popleft()
        if not queue:
            self._queue = None  # an idle stream keeps no buffer
        return event


class Broker:
    """What both brokers share: this process's subscriptions and their delivery."""

    kind: Literal["in-process", "redis"]

    def __init__(self, history: int) -> None:
        self.history_size = history
        self._subscribers: dict[str, set[Subscription]] = {}
        self._control: list[ControlHandler] = []
        #: The newest event id this process has seen (the page's starting point).
        self.last_id: str | None = None

    # -- in this process -------------------------------------------------------------

    def subscribe(self, channels: Iterable[str], limit: int) -> Subscription:
        """A new subscription to ``channels`` with a buffer of ``limit`` events."""
        subscription = Subscription(channels, limit)
        for channel in subscription.channels:
            self._subscribers.setdefault(channel, set()).add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Forget ``subscription`` (its stream ended)."""
        for channel in subscription.channels:
            found = self._subscribers.get(channel)
            if found is not None:
                found.discard(subscription)
                if not found:
                    del self._subscribers[channel]

    def subscriptions(self) -> list[Subscription]:
        """Every open subscription of this process."""
        seen: set[Subscription] = set()
        for found in self._subscribers.values():
            seen.update(found)
        return list(seen)

    def on_control(self, handler: ControlHandler) -> None:
        """Call ``handler(data)`` for each message on the control channel, in every worker."""
        self._control.append(handler)

    def dispatch(self, event: Event) -> None:
        """Hand ``event`` to this process's subscriptions of its channel."""
        if event.channel == CONTROL_CHANNEL:
            for handler in self._control:
                task = asyncio.get_running_loop().create_task(handler(event.data))
                _background.add(task)
                task.add_done_callback(_background.discard)
            return
        self.last_id = event.id
        for subscription in tuple(self._subscribers.get(event.channel, ())):
            subscription.offer(event)

    def close_all(self, reason: str) -> None:
        """End every subscription of this process (shutdown)."""
        for subscription in self.subscriptions():
            subscription.close(reason)

    # -- what each broker does -------------------------------------------------------

    async def start(self) -> None:
        """Connect (the Redis broker); nothing for the in-process one."""

    async def close(self) -> None:
        """End every subscription and disconnect."""
        self.close_all("shutdown")

    async def publish(self, channel: str, event: str, data: str) -> Event:
        """Send ``event`` to every subscriber of ``channel``, in every worker."""
        raise NotImplementedError

    async def history_after(self, after: EventId, channels: frozenset[str]) -> list[Event] | None:
        """The events of ``channels`` after ``after``, oldest first; None when some of
        them are no longer in the history (the client missed events)."""
        raise NotImplementedError

    async def ping(self) -> bool:
        """True when the broker can publish right now."""
        return True


# Control handlers run as tasks; a reference keeps each alive until it is done.
_background: set[asyncio.Task[None]] = set()


class InProcessBroker(Broker):
    """Events within one process: no setup, one worker."""

    kind = "in-process"

    def __init__(self, history: int) -> None:
        super().__init__(history)
        # The start time: ids of an earlier process (a restart) are told apart.
        self.epoch = time.time_ns() // 1_000_000
        self._sequence = 0
        self._history: deque[Event] = deque(maxlen=history)

    async def publish(self, channel: str, event: str, data: str) -> Event:
        if channel == CONTROL_CHANNEL:  # not kept, not numbered: only workers read it
            published = Event("0-0", channel, event, data)
        else:
            self._sequence += 1
            published = Event(f"{self.epoch}-{self._sequence}", channel, event, data)
            self._history.append(published)
        self.dispatch(published)
        return published

    async def history_after(self, after: EventId, channels: frozenset[str]) -> list[Event] | None:
        epoch, sequence = after
        if epoch != self.epoch or sequence > self._sequence:
            return None  # from another process's life, or made up
        if self._history:
            oldest = self._history[0].position[1]
            if sequence < oldest - 1:
                return None
        elif sequence < self._sequence:
            return None
        return [
            event
            for event in self._history
            if event.position[1] > sequence and event.channel in channels
        ]
