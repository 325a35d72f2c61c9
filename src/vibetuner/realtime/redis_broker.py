"""Events through Redis (``REDIS_URL``): every worker receives what any process published.

One Lua call per event appends it to a stream (the history, ``REALTIME_HISTORY``
entries, exactly trimmed) and publishes it on one pub/sub channel, atomically, so the
id a browser resumes from and the order workers deliver in are the same. Each worker
holds one pub/sub connection and hands each event to its own subscribers. coredis is
the client (the one the jobs' queue uses).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any

from vibetuner.realtime.broker import CONTROL_CHANNEL, Broker
from vibetuner.realtime.events import Event, EventId, parse_event_id

if TYPE_CHECKING:
    from vibetuner.config import Settings

logger = logging.getLogger("vibetuner.realtime")

# KEYS: the history stream, the pub/sub channel. ARGV: history size, channel, event, data.
PUBLISH = """
local id = redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[1], '*',
    'c', ARGV[2], 'e', ARGV[3], 'd', ARGV[4])
redis.call('PUBLISH', KEYS[2], id .. '\\n' .. ARGV[2] .. '\\n' .. ARGV[3] .. '\\n' .. ARGV[4])
return id
"""


def unavailable(exc: BaseException) -> Exception:
    from vibetuner.realtime import RealtimeUnavailable

    logger.error("realtime: Redis cannot be reached: %s: %s", type(exc).__name__, exc)
    return RealtimeUnavailable("the realtime broker (Redis) cannot be reached")


class RedisBroker(Broker):
    """The broker of ``RealtimeFeature`` with ``REDIS_URL``."""

    kind = "redis"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings.realtime_history)
        assert settings.redis_url is not None
        self.url = settings.redis_url.get_secret_value()
        prefix = settings.realtime_redis_prefix
        self.stream_key = f"{prefix}:history"
        self.channel = f"{prefix}:events"
        self.client: Any = None
        self._stack = AsyncExitStack()
        self._listener: asyncio.Task[None] | None = None
        self._script: Any = None

    async def start(self) -> None:
        from coredis import Redis

        client: Any = Redis.from_url(self.url, decode_responses=True)
        self.client = await self._stack.enter_async_context(client)
        self._script = self.client.register_script(PUBLISH)
        subscribed = asyncio.Event()
        self._listener = asyncio.get_running_loop().create_task(self._listen(subscribed))
        waiting = asyncio.ensure_future(subscribed.wait())
        done, _ = await asyncio.wait({waiting, self._listener}, return_when="FIRST_COMPLETED")
        if self._listener in done:
            waiting.cancel()
            await self._stack.aclose()
            self._listener.result()  # raises why it could not subscribe

    async def _listen(self, subscribed: asyncio.Event) -> None:
        async with self.client.pubsub(
            channels=[self.channel], ignore_subscribe_messages=True
        ) as pubsub:
            subscribed.set()
            async for message in pubsub:
                if message.get("type") == "message":
                    self._on_message(message["data"])

    def _on_message(self, payload: str) -> None:
        try:
            event_id, channel, name, data = payload.split("\n", 3)
        except ValueError:
            logger.warning("realtime: ignored a malformed message on %s", self.channel)
            return
        self.dispatch(Event(event_id, channel, name, data))

    async def close(self) -> None:
        self.close_all("shutdown")
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
        await self._stack.aclose()

    async def publish(self, channel: str, event: str, data: str) -> Event:
        try:
            if channel == CONTROL_CHANNEL:
                await self.client.publish(self.channel, f"0-0\n{channel}\n{event}\n{data}")
                return Event("0-0", channel, event, data)
            event_id = await self._script(
                keys=[self.stream_key, self.channel],
                args=[self.history_size, channel, event, data],
            )
        except Exception as exc:
            raise unavailable(exc) from exc
        return Event(str(event_id), channel, event, data)

    async def history_after(self, after: EventId, channels: frozenset[str]) -> list[Event] | None:
        try:
            length = int(await self.client.xlen(self.stream_key))
            if length == 0:
                return None  # the history is gone (a Redis without persistence restarted)
            first = await self.client.xrange(self.stream_key, "-", "+", count=1)
            oldest = parse_event_id(str(first[0].identifier)) if first else None
            if oldest is not None and oldest > after and length >= self.history_size:
                return None  # entries after `after` were trimmed away
            start = f"{after[0]}-{after[1] + 1}"
            entries = await self.client.xrange(self.stream_key, start, "+", count=self.history_size)
        except Exception as exc:
            raise unavailable(exc) from exc
        found = []
        for entry in entries:
            values = entry.field_values
            if values.get("c") in channels:
                found.append(Event(str(entry.identifier), values["c"], values["e"], values["d"]))
        return found

    async def ping(self) -> bool:
        try:
            return bool(await self.client.ping())
        except Exception:
            return False
