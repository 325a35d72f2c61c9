"""The running side of realtime in one process: the broker, the open streams and who
they belong to, and the periodic check of their sessions."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vibetuner._compat.uvicorn_exit import server_exiting
from vibetuner.realtime.access import ChannelRules
from vibetuner.realtime.broker import CONTROL_CHANNEL, Broker, Subscription
from vibetuner.realtime.events import Event, check_channel, check_event_name, encode_data
from vibetuner.realtime.sessions import live_sessions

if TYPE_CHECKING:
    from vibetuner.config import Settings

logger = logging.getLogger("vibetuner.realtime")
#: Queued to a quiet stream every REALTIME_HEARTBEAT seconds; written as a comment line.
HEARTBEAT = Event("0-0", "", "heartbeat", "")
#: How often (seconds) the hub looks for stuck writes and whether the server is stopping.
WATCH_EVERY = 0.25


@dataclass(eq=False, slots=True)
class Listener:
    """One open stream: its subscription, and the user and session it was opened with."""

    subscription: Subscription
    user_id: str
    session_key: str
    channels: frozenset[str] = field(default_factory=frozenset)
    #: The client's address, for the log line when it is dropped.
    client: str = ""


class Hub:
    """The broker, the channel rules and this process's open streams."""

    def __init__(self, broker: Broker, rules: ChannelRules, settings: Settings) -> None:
        self.broker = broker
        self.rules = rules
        self.settings = settings
        self.listeners: set[Listener] = set()
        #: The subscriptions whose stream is writing right now (usually none).
        self.writing: set[Subscription] = set()
        self._per_session: dict[str, int] = {}
        self._checker: asyncio.Task[None] | None = None
        self._beater: asyncio.Task[None] | None = None
        self._watcher: asyncio.Task[None] | None = None
        broker.on_control(self._on_control)

    async def start(self) -> None:
        """Connect the broker and start checking the streams' sessions."""
        await self.broker.start()
        loop = asyncio.get_running_loop()
        self._checker = loop.create_task(self._check_periodically())
        self._beater = loop.create_task(self._beat_periodically())
        self._watcher = loop.create_task(self._watch())

    async def close(self) -> None:
        """Close every stream and the broker."""
        for task in (self._checker, self._beater, self._watcher):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self.broker.close()

    async def publish(self, channel: str, event: str, data: Any = "") -> Event:
        """Check the names and the size, then publish (see ``vibetuner.realtime.publish``)."""
        check_channel(channel)
        check_event_name(event)
        text = encode_data(data, self.settings.realtime_max_event_bytes)
        return await self.broker.publish(channel, event, text)

    def streams_of(self, session_key: str) -> int:
        """How many streams the session holds open in this process."""
        return self._per_session.get(session_key, 0)

    def listen(
        self, channels: frozenset[str], user_id: str, session_key: str, client: str = ""
    ) -> Listener:
        """Register a stream of ``user_id``'s session on ``channels``."""
        subscription = self.broker.subscribe(channels, self.settings.realtime_buffer)
        listener = Listener(subscription, user_id, session_key, subscription.channels, client)
        self.listeners.add(listener)
        self._per_session[session_key] = self._per_session.get(session_key, 0) + 1
        return listener

    def forget(self, listener: Listener) -> None:
        """The stream ended: stop delivering to it."""
        if listener in self.listeners:
            left = self._per_session.get(listener.session_key, 1) - 1
            if left > 0:
                self._per_session[listener.session_key] = left
            else:
                self._per_session.pop(listener.session_key, None)
        self.listeners.discard(listener)
        self.broker.unsubscribe(listener.subscription)
        listener.subscription.close("ended")

    async def check_sessions(self, listeners: list[Listener] | None = None) -> int:
        """Close the streams (all, or ``listeners``) whose session has ended; how many."""
        chosen = list(self.listeners) if listeners is None else listeners
        if not chosen:
            return 0
        live = await live_sessions([item.session_key for item in chosen], self.settings)
        closed = 0
        for listener in chosen:
            if listener.session_key not in live:
                listener.subscription.close("revoked")
                closed += 1
        if closed:
            logger.info("closed %d stream(s) whose session ended", closed)
        return closed

    async def _on_control(self, data: str) -> None:
        try:
            message = json.loads(data)
            user, session = message.get("user"), message.get("session")
        except (ValueError, AttributeError):
            return
        chosen = [
            item
            for item in self.listeners
            if (user is not None and item.user_id == user)
            or (session is not None and item.session_key == session)
        ]
        try:
            await self.check_sessions(chosen)
        except Exception as exc:  # the database away: the periodic check tries again
            logger.warning("could not check sessions of open streams: %s", type(exc).__name__)

    async def _beat_periodically(self) -> None:
        # One timer for every stream of the process (not one per waiting stream): each
        # stream that sent nothing during the last period gets a heartbeat.
        while True:
            await asyncio.sleep(self.settings.realtime_heartbeat)
            for listener in tuple(self.listeners):
                subscription = listener.subscription
                if subscription.quiet:
                    subscription.offer(HEARTBEAT)
                subscription.quiet = True

    async def _watch(self) -> None:
        # Four times a second: a write stuck past REALTIME_SEND_TIMEOUT (the client
        # stopped reading) drops its client; and uvicorn waits for open responses before
        # it shuts the app down, so the streams end as soon as it is told to stop (and
        # any opened after, while it drains).
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(WATCH_EVERY)
            if self.writing:
                stuck_since = loop.time() - self.settings.realtime_send_timeout
                for subscription in tuple(self.writing):
                    since = subscription.writing_since
                    if since is not None and since < stuck_since:
                        subscription.close("slow")
            if server_exiting() and self.listeners:
                logger.info("server stopping: closing %d stream(s)", len(self.listeners))
                self.broker.close_all("shutdown")

    async def _check_periodically(self) -> None:
        every = self.settings.realtime_session_check
        while True:
            await asyncio.sleep(every)
            try:
                await self.check_sessions()
            except Exception as exc:
                logger.warning("could not check sessions of open streams: %s", type(exc).__name__)


_current: Hub | None = None


def current_hub() -> Hub | None:
    """The running app's hub (set while ``RealtimeFeature`` runs), or None."""
    return _current


def set_current(hub: Hub | None) -> None:
    """Make ``hub`` the one ``publish`` uses (the feature's lifespan calls it)."""
    global _current
    _current = hub


async def sessions_changed(*, user_id: Any = None, session_key: str | None = None) -> None:
    """Tell every worker to check now the streams of ``user_id`` or of one session.

    Called where sessions end. It never fails the caller: when there is no realtime
    broker, or it cannot be reached, the periodic check closes the streams instead.
    """
    hub = current_hub()
    if hub is None:
        return
    message = {"user": None if user_id is None else str(user_id), "session": session_key}
    try:
        await hub.broker.publish(CONTROL_CHANNEL, "sessions", json.dumps(message))
    except Exception as exc:
        logger.warning("could not signal a session change: %s", type(exc).__name__)
