"""Realtime fixtures: an app with ``RealtimeFeature`` served by uvicorn in this process
(httpx's ASGI transport buffers whole responses, so a stream needs a real server), and
a reader of server-sent events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import APIRouter

from tests.robustness.conftest import served
from vibetuner import AuthFeature, create_app
from vibetuner.models import UserModel
from vibetuner.realtime import RealtimeFeature, publish
from vibetuner.testing import session_cookie

router = APIRouter()
# The documents of the per-document rule: note id -> owner id.
OWNERS: dict[str, str] = {}


@router.post("/test-publish/{channel}/{event}")
async def publish_from_a_route(channel: str, event: str, data: str = "") -> dict[str, str]:
    published = await publish(channel, event, data)
    return {"id": published.id}


def realtime_app(settings: Any) -> Any:
    """Sign-in and realtime, with a per-document rule (``note:{note_id}``)."""
    realtime = RealtimeFeature()

    @realtime.channel("note:{note_id}")
    async def may_read_note(user: UserModel, note_id: str) -> bool:
        return OWNERS.get(note_id) == str(user.id)

    return create_app(settings=settings, features=[AuthFeature(), realtime], routers=[router])


@pytest.fixture
def realtime_settings() -> dict[str, Any]:
    """Settings a test changes (merged into the plugin's ``vibetuner_settings``)."""
    return {}


@asynccontextmanager
async def running(application: Any) -> AsyncIterator[Any]:
    """Run ``application``'s lifespan in a task of its own, as a server does (the Redis
    client's connections must be closed by the task that opened them)."""
    ready, done = asyncio.Event(), asyncio.Event()

    async def serve() -> None:
        async with application.router.lifespan_context(application):
            ready.set()
            await done.wait()

    server = asyncio.create_task(serve())
    waiting = asyncio.create_task(ready.wait())
    await asyncio.wait([server, waiting], return_when=asyncio.FIRST_COMPLETED)
    if server.done():
        waiting.cancel()
        server.result()
    try:
        yield application
    finally:
        done.set()
        await server


@pytest.fixture
async def app(vibetuner_settings: Any, realtime_settings: dict[str, Any]) -> AsyncIterator[Any]:
    settings = vibetuner_settings.model_copy(update=realtime_settings)
    async with running(realtime_app(settings)) as application:
        yield application


@pytest.fixture
async def server(app: Any) -> AsyncIterator[tuple[str, Any]]:
    async with served(app) as (url, uvicorn_server):
        yield url, uvicorn_server


@pytest.fixture
def base_url(server: tuple[str, Any]) -> str:
    return server[0]


async def cookies_for(app: Any, user: Any) -> dict[str, str]:
    """A real server-side session of ``user``, as the cookie a browser would send."""
    from vibetuner.auth.session_auth import SESSION_TOKEN_KEY
    from vibetuner.auth.sessions import start_session
    from vibetuner.web.context import app_context

    settings = app_context(app).settings
    token = await start_session(user, settings)
    return {settings.session_cookie_name: session_cookie(settings, {SESSION_TOKEN_KEY: token})}


async def new_user(email: str | None = None) -> UserModel:
    import uuid

    person = UserModel(email=email or f"rt-{uuid.uuid4().hex[:10]}@example.com")
    await person.insert()
    return person


@dataclass
class Received:
    """One server-sent event as a browser parses it."""

    event: str = "message"
    data: str = ""
    id: str | None = None


@dataclass
class Stream:
    """An open event stream: ``await stream.next()`` is the next event (comments skipped
    unless ``comments`` is set)."""

    response: httpx.Response
    lines: AsyncIterator[str]
    comments: list[str] = field(default_factory=list)

    async def next(self, seconds: float = 5.0) -> Received | None:
        """The next event, or None when the server ended the stream."""
        import asyncio

        async with asyncio.timeout(seconds):
            current = Received()
            data: list[str] = []
            async for line in self.lines:
                if line == "":
                    if data or current.id is not None or current.event != "message":
                        current.data = "\n".join(data)
                        return current
                    continue
                if line.startswith(":"):
                    self.comments.append(line)
                    continue
                name, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if name == "data":
                    data.append(value)
                elif name == "event":
                    current.event = value
                elif name == "id":
                    current.id = value
            return None


async def open_stream(
    http: httpx.AsyncClient, url: str, headers: dict[str, str] | None = None
) -> tuple[httpx.Response, Stream | None]:
    """GET ``url``; the response, and a ``Stream`` when it is an event stream (200)."""
    request = http.build_request("GET", url, headers=headers)
    response = await http.send(request, stream=True)
    if response.status_code != 200:
        await response.aread()
        await response.aclose()
        return response, None
    return response, Stream(response, sse_lines(response))


async def sse_lines(response: httpx.Response) -> AsyncIterator[str]:
    """The stream's lines as an EventSource splits them: at CR LF, CR or LF only
    (httpx's ``aiter_lines`` also splits at U+2028 and the like)."""
    import re

    buffer = b""
    async for chunk in response.aiter_bytes():
        buffer += chunk
        while found := re.search(rb"\r\n|\r|\n", buffer):
            if found.group() == b"\r" and found.end() == len(buffer):
                break  # a LF may follow in the next chunk
            yield buffer[: found.start()].decode("utf-8")
            buffer = buffer[found.end() :]


def hub_of(app: Any) -> Any:
    from vibetuner.realtime.hub import Hub
    from vibetuner.web.context import app_context

    return app_context(app).get(Hub)
