"""One open event stream, with one task while it sits idle: the request's own.

The request task only waits for the client to go (``http.disconnect``); it holds no
middleware frames (``vibetuner.web.detached``) and no timer. Writing happens from the
publishing side: when the subscription gets an event (or a heartbeat, or is closed), a
short-lived writer task sends what waits, each write bounded by
``REALTIME_SEND_TIMEOUT``, and ends. A client that stops reading is dropped: its buffer
fills (``REALTIME_BUFFER``) or a write times out, and the connection is closed.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from vibetuner.realtime.events import EventId
from vibetuner.realtime.hub import HEARTBEAT
from vibetuner.web.detached import detach

if TYPE_CHECKING:
    from vibetuner.realtime.hub import Hub, Listener

logger = logging.getLogger("vibetuner.realtime")

PING = b": ping\r\n\r\n"
HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-store"),
    # nginx: pass each event on at once, do not buffer the response
    (b"x-accel-buffering", b"no"),
]


class EventStream:
    """The body of one ``GET /realtime`` response after its head is sent."""

    __slots__ = ("hub", "listener", "first", "last", "_send", "_task", "_writer", "_ended")

    def __init__(self, hub: Hub, listener: Listener, first: bytes, last: EventId | None) -> None:
        self.hub = hub
        self.listener = listener
        #: Sent before anything else: what the client missed (or "realtime-missed").
        self.first = first
        #: Events up to here were in ``first`` (they may be queued again): skipped.
        self.last = last
        self._send: Send | None = None
        self._task: asyncio.Task[object] | None = None
        self._writer: asyncio.Task[None] | None = None
        #: The stream's end was decided here (closed, or the client dropped).
        self._ended = False

    async def run(self, receive: Receive, send: Send) -> None:
        """Serve the stream until the client goes or the subscription is closed."""
        self._send = send
        self._task = asyncio.current_task()
        subscription = self.listener.subscription
        subscription.ready = self.wake
        self.wake()  # what was queued before, and ``first``
        try:
            while (await receive())["type"] != "http.disconnect":
                pass
        except asyncio.CancelledError:
            if not self._ended:
                raise  # not ours: the server is cancelling its requests
            # Ours (the stream was ended here): the request returns normally.
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
        finally:
            self._task = None  # from here on nothing is written
            subscription.ready = None
            writer = self._writer
            if writer is not None and writer is not asyncio.current_task():
                writer.cancel()
            self.hub.forget(self.listener)

    def abandon(self) -> None:
        """The app failed before the stream ran: stop delivering to it."""
        self.hub.forget(self.listener)

    def wake(self) -> None:
        """The subscription has something to send or was closed: write it."""
        if self._task is None or self._ended:
            return
        if self.listener.subscription.closed == "slow":
            # Its buffer is full: it stopped reading; a write under way would only
            # wait for its timeout.
            self._drop()
            return
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._write())

    async def _write(self) -> None:
        subscription = self.listener.subscription
        writing = self.hub.writing
        writing.add(subscription)
        try:
            if self.first:
                body, self.first = self.first, b""
                await self._put(body)
            while (event := subscription.take()) is not None:
                if event is HEARTBEAT:  # the hub's, for a stream quiet for a while
                    await self._put(PING)
                    continue
                if self.last is not None:
                    if event.position <= self.last:
                        continue  # already sent from the history
                    self.last = None  # events come in order: no need to look again
                await self._put(event.wire)  # encoded once for every subscriber
            if subscription.closed is None:
                return
            # Closed (signed out, shutdown ...): end the response, then the request.
            self._ended = True
            await self._put(b"", more=False)
            self._stop_request()
        except OSError:  # the connection is gone: the request sees the disconnect
            pass
        finally:
            writing.discard(subscription)
            if self._writer is asyncio.current_task():
                self._writer = None

    async def _put(self, body: bytes, more: bool = True) -> None:
        # Stamped rather than wrapped in a timeout (a timer per write, thousands per
        # event): the hub's watch drops a write stuck past REALTIME_SEND_TIMEOUT.
        subscription = self.listener.subscription
        send = self._send
        assert send is not None
        subscription.writing_since = asyncio.get_running_loop().time()
        try:
            await send({"type": "http.response.body", "body": body, "more_body": more})
        finally:
            subscription.writing_since = None

    def _drop(self) -> None:
        """The client stopped reading: close its connection, unfinished."""
        self._ended = True
        self.listener.subscription.close("slow")
        writer = self._writer
        if writer is not None and writer is not asyncio.current_task():
            writer.cancel()
        client = self.listener.client
        logger.info("dropped a realtime client that stopped reading: %s", client or "unknown")
        # The request returns without completing the response: the server closes it.
        self._stop_request()

    def _stop_request(self) -> None:
        task = self._task
        if task is not None and not task.done():
            task.cancel()


class RealtimeResponse(Response):
    """Sends the event stream's head through the middleware, then goes on outside it."""

    def __init__(self, stream: EventStream) -> None:
        self.stream = stream
        self.status_code = 200
        self.background = None
        self.raw_headers = list(HEADERS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        except BaseException:
            self.stream.abandon()
            raise
        if not detach(scope, self.stream):
            await self.stream.run(receive, send)
