"""``DetachedResponses``: a long-lived response goes on after the middleware returned,
with the head the middleware shaped, and without the per-request state it kept."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vibetuner.web.detached import DetachedResponses, detach


class Recording:
    """A middleware that adds a header, puts per-request state in the scope and notes
    when it has returned."""

    def __init__(self, app: ASGIApp, notes: list[str]) -> None:
        self.app = app
        self.notes = notes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-seen", b"yes")]
            await send(message)

        scope["session"] = {"big": "x" * 1000}
        await self.app(scope, receive, send_with_header)
        self.notes.append("middleware returned")


class Rest:
    def __init__(self, notes: list[str], scope: Scope) -> None:
        self.notes = notes
        self.scope = scope

    async def run(self, receive: Receive, send: Send) -> None:
        self.notes.append(f"rest runs; session in scope: {'session' in self.scope}")
        await send({"type": "http.response.body", "body": b"data: 1\n\n", "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    def abandon(self) -> None:
        self.notes.append("abandoned")


def streaming_app(notes: list[str], fail_after: bool = False) -> ASGIApp:
    async def endpoint(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        notes.append(f"detached: {detach(scope, Rest(notes, scope))}")
        if fail_after:
            raise RuntimeError("after detach")

    return DetachedResponses(Recording(endpoint, notes))


async def test_the_rest_runs_after_the_middleware_returned() -> None:
    notes: list[str] = []
    transport = httpx.ASGITransport(app=streaming_app(notes))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        response = await http.get("/events")
    assert response.headers["x-seen"] == "yes"  # the head went through the middleware
    assert response.text == "data: 1\n\n"
    assert notes == [
        "detached: True",
        "middleware returned",
        "rest runs; session in scope: False",  # the app's request state let go
    ]


async def test_an_app_failing_after_detach_abandons_the_rest() -> None:
    notes: list[str] = []
    transport = httpx.ASGITransport(app=streaming_app(notes, fail_after=True))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        with pytest.raises(RuntimeError, match="after detach"):
            await http.get("/events")
    assert notes == ["detached: True", "abandoned"]


def test_without_the_middleware_detach_says_no() -> None:
    scope: dict[str, Any] = {"type": "http"}
    assert detach(scope, Rest([], scope)) is False
