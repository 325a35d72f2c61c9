"""Request bodies as they come off the socket: one that stalls is given up on, and a
small one a refusal left unread is read before the refusal goes out.

* **Stalled bodies.** uvicorn waits for a request body as long as the client likes, so a
  client that sends its headers and then its body slowly, or never, holds a connection
  and a task for good (150 such connections were all still open after 20 s). Each wait
  for the next piece of a body here gets ``REQUEST_BODY_TIMEOUT`` seconds; past that the
  client is answered 408 and the connection closed, and the app sees the client as gone
  (``http.disconnect``), as when it hangs up.
* **Refusals with an unread body.** An answer sent before the body was read (the CSRF
  check's 403, a 401 ...) closes the connection while the client may still be sending;
  the kernel answers bytes arriving on a closed socket with a reset, and a client that
  has not read the answer yet loses it. So before an error answer, up to
  ``DRAIN_BYTES`` of the rest of the body are read (for ``DRAIN_SECONDS`` at most): never
  for a body declared larger, for a 413 (the body is the problem), or for a client that
  waits for ``100 Continue`` before sending it.

Requests without a body (no ``Content-Length`` or ``Transfer-Encoding``) pass untouched.
"""

from __future__ import annotations

import asyncio
import json
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger("vibetuner.requests")

DRAIN_BYTES = 64 * 1024
DRAIN_SECONDS = 2.0
# Set on the scope when the body timed out, so the app's disconnect handling stays quiet.
SCOPE_TIMED_OUT = "vibetuner.body_timed_out"


class RequestBodyMiddleware:
    """Give up on request bodies that stall (``timeout`` seconds between pieces; None or
    0: wait forever) and read small unread bodies before an error answer."""

    def __init__(self, app: ASGIApp, *, timeout: float | None) -> None:
        self.app = app
        self.timeout = timeout or None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared: int | None = None
        has_body = expects_continue = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                digits = value.strip()
                declared = int(digits) if digits.isdigit() and len(digits) <= 18 else None
                has_body = declared != 0
            elif name == b"transfer-encoding":
                has_body = True
            elif name == b"expect":
                expects_continue = value.strip().lower() == b"100-continue"
        if not has_body:
            await self.app(scope, receive, send)
            return
        body = _Body(scope, receive, send, self.timeout, declared, expects_continue)
        await self.app(scope, body.receive, body.send)


class _Body:
    """The wrapped ``receive`` and ``send`` of one request that has a body."""

    def __init__(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        timeout: float | None,
        declared: int | None,
        expects_continue: bool,
    ) -> None:
        self.scope = scope
        self.upstream = receive
        self._send = send
        self.timeout = timeout
        self.declared = declared
        self.expects_continue = expects_continue
        self.done = False  # the whole body (or the disconnect) has been received
        self.started = False  # the app began its answer
        self.timed_out = False
        self.answered = False  # the 408 went out instead of the app's answer

    async def receive(self) -> Message:
        if self.timed_out:
            return {"type": "http.disconnect"}
        if self.done or self.timeout is None:
            return self._note(await self.upstream())
        try:
            async with asyncio.timeout(self.timeout):
                message = await self.upstream()
        except TimeoutError:
            await self._give_up()
            return {"type": "http.disconnect"}
        return self._note(message)

    async def send(self, message: Message) -> None:
        if self.answered:
            return
        if message["type"] == "http.response.start":
            self.started = True
            if not self.done and message["status"] >= 400 and self._drainable(message["status"]):
                await self._drain()
        await self._send(message)

    def _note(self, message: Message) -> Message:
        if message["type"] == "http.disconnect" or not message.get("more_body", False):
            self.done = True
        return message

    def _drainable(self, status: int) -> bool:
        if status == 413 or self.expects_continue:
            return False
        return self.declared is None or self.declared <= DRAIN_BYTES

    async def _drain(self) -> None:
        read = 0
        try:
            async with asyncio.timeout(DRAIN_SECONDS):
                while not self.done and read <= DRAIN_BYTES:
                    message = self._note(await self.upstream())
                    read += len(message.get("body", b""))
        except TimeoutError:
            pass  # the answer goes out anyway; the server closes the connection

    async def _give_up(self) -> None:
        self.timed_out = True
        self.scope[SCOPE_TIMED_OUT] = True
        client = self.scope.get("client")
        logger.info(
            "gave up on the body of %s %s from %s: nothing arrived for %s s",
            self.scope["method"],
            self.scope.get("path", ""),
            client[0] if client else "unknown",
            f"{self.timeout:g}",
        )
        if self.started:
            return  # the answer has begun: the app ends it when it sees the disconnect
        self.answered = True
        body = json.dumps(
            {"detail": f"The request body did not arrive within {self.timeout:g} seconds."}
        ).encode()
        await self._send(
            {
                "type": "http.response.start",
                "status": 408,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await self._send({"type": "http.response.body", "body": body})
