"""``RealtimeFeature``: server-sent events for an app, in process or through Redis."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from vibetuner.features import ErrorAnswer, Feature
from vibetuner.i18n import N_
from vibetuner.realtime import hub as hubs
from vibetuner.realtime.access import ChannelRules, Rule
from vibetuner.realtime.broker import Broker, InProcessBroker
from vibetuner.realtime.events import user_channel
from vibetuner.realtime.routes import router

if TYPE_CHECKING:
    from fastapi import APIRouter

    from vibetuner.config import Settings
    from vibetuner.context import AppContext
    from vibetuner.errors import VibetunerError

STREAM_PATH = "/realtime"


class RealtimeFeature(Feature):
    """Push events to pages: ``await publish(channel, event, data)`` from anywhere, and
    ``GET /realtime?channel=...`` (server-sent events) for the signed-in browsers
    allowed to read the channel (``channel`` rules).

    Without ``REDIS_URL`` events stay in the process (one worker); with it they go
    through Redis to every worker, and the history for reconnects is kept there.
    """

    name = "realtime"
    requires = ("auth",)

    def __init__(self) -> None:
        self.rules = ChannelRules()
        self.hub: hubs.Hub | None = None

    def channel(self, pattern: str) -> Callable[[Rule], Rule]:
        """Decorator: the rule deciding who may subscribe to channels matching ``pattern``.

        ``rule(user, **placeholders)`` returns (or awaits to) True to allow; see
        ``vibetuner.realtime.access``.
        """

        def register(rule: Rule) -> Rule:
            self.rules.add(pattern, rule)
            return rule

        return register

    def routers(self) -> Sequence[APIRouter]:
        return [router]

    def errors(self) -> Mapping[type[VibetunerError], ErrorAnswer]:
        from vibetuner.realtime import RealtimeUnavailable

        # A 503 (the broker cannot be reached), logged with the request's path.
        return {RealtimeUnavailable: ErrorAnswer(503, N_("Service unavailable"))}

    def check_settings(self, settings: Settings) -> list[str]:
        if settings.redis_url is None:
            return []
        try:
            import coredis  # noqa: F401
        except ImportError:
            return ["REDIS_URL is set but coredis is not installed: pip install 'vibetuner[redis]'"]
        return []

    async def check_ready(self, context: AppContext) -> list[str]:
        hub = self.hub
        if hub is not None and not await hub.broker.ping():
            return ["the realtime broker (Redis) cannot be reached"]
        return []

    @asynccontextmanager
    async def lifespan(self, context: AppContext) -> AsyncIterator[None]:
        settings = context.settings
        broker: Broker
        if settings.redis_url is None:
            broker = InProcessBroker(settings.realtime_history)
        else:
            from vibetuner.realtime.redis_broker import RedisBroker

            broker = RedisBroker(settings)
        hub = hubs.Hub(broker, self.rules, settings)
        await hub.start()
        # What the app built at startup (modules, models, routes, templates) lives as
        # long as the process: out of the collector's way, a full collection no longer
        # walks it, which paused an event's fan-out to 1,000 streams by 40 ms or more
        # (the thousands of short-lived writes make full collections frequent).
        gc.freeze()
        self.hub = hub
        hubs.set_current(hub)
        context.provide(hub)
        globals_ = context.templates.env.globals
        globals_["realtime_url"] = lambda *channels: stream_url(hub, channels)
        globals_["user_channel"] = user_channel
        try:
            yield
        finally:
            context.withdraw(hubs.Hub)
            if hubs.current_hub() is hub:
                hubs.set_current(None)
            self.hub = None
            await hub.close()
            gc.unfreeze()  # another app may run in this process after this one


def stream_url(hub: hubs.Hub, channels: Sequence[str]) -> str:
    """The stream's address for ``channels``, starting after the newest event seen here
    (so what is published between the page's rendering and the connection is not lost)."""
    query: list[tuple[str, str]] = [("channel", channel) for channel in channels]
    if hub.broker.last_id is not None:
        query.append(("after", hub.broker.last_id))
    return f"{STREAM_PATH}?{urlencode(query)}"
