"""The event stream's response (sse-starlette), imported by the first stream, not at start."""

from __future__ import annotations

import logging

from sse_starlette import EventSourceResponse, ServerSentEvent
from sse_starlette.sse import SendTimeoutError
from starlette.types import Receive, Scope, Send

logger = logging.getLogger("vibetuner.realtime")

__all__ = ["RealtimeResponse", "ServerSentEvent"]


class RealtimeResponse(EventSourceResponse):
    """An event stream that drops, quietly, a client that stopped reading."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except SendTimeoutError:
            # The server closes the connection: the response never completed.
            client = scope.get("client")
            logger.info(
                "dropped a realtime client that stopped reading: %s",
                client[0] if client else "unknown",
            )
