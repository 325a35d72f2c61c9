"""The servers bench/realtime.py measures, each started with ``uvicorn --factory``.

``ours``: a vibetuner app with sign-in and ``RealtimeFeature`` (in process, or Redis
with ``REDIS_URL``). ``baseline``: the same fan-out written directly on FastAPI,
sse-starlette and redis.asyncio, with no sign-in, no channel rules and no history.
Both publish the time (CLOCK_MONOTONIC, shared by the processes of one machine) as the
event's data at ``GET /bench/publish``, and stream at ``GET /bench/stream`` (ours:
``/realtime?channel=app``).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse


def ours() -> FastAPI:
    """vibetuner: the cookie of a signed-in session goes to ``BENCH_COOKIE_FILE``."""
    from vibetuner import AuthFeature, create_app
    from vibetuner.auth.session_auth import SESSION_TOKEN_KEY
    from vibetuner.auth.sessions import start_session
    from vibetuner.config import get_settings
    from vibetuner.models import UserModel
    from vibetuner.realtime import RealtimeFeature, publish
    from vibetuner.testing import session_cookie

    router = APIRouter()

    @router.get("/bench/publish")
    async def bench_publish() -> dict[str, str]:
        await publish("app", "tick", repr(time.monotonic()))
        return {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings = get_settings()
        user = await UserModel(email=f"bench-{os.getpid()}@example.com").insert()
        token = await start_session(user, settings)
        value = session_cookie(settings, {SESSION_TOKEN_KEY: token})
        cookie = f"{settings.session_cookie_name}={value}"
        await asyncio.to_thread(Path(os.environ["BENCH_COOKIE_FILE"]).write_text, cookie)
        yield

    return create_app(
        features=[AuthFeature(), RealtimeFeature()], routers=[router], lifespan=lifespan
    )


def baseline() -> FastAPI:
    """sse-starlette and redis.asyncio, as an app would write them by hand."""
    from sse_starlette import EventSourceResponse

    queues: set[asyncio.Queue[str]] = set()
    redis_url = os.environ.get("REDIS_URL")
    state: dict[str, Any] = {}

    def deliver(data: str) -> None:
        for queue in tuple(queues):
            try:
                queue.put_nowait(data)
            except asyncio.QueueFull:
                pass

    async def listen(pubsub: Any) -> None:
        async for message in pubsub.listen():
            if message["type"] == "message":
                deliver(message["data"].decode())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(Path(os.environ["BENCH_COOKIE_FILE"]).write_text, "none=none")
        if redis_url is None:
            yield
            return
        import redis.asyncio

        client = redis.asyncio.from_url(redis_url)
        pubsub = client.pubsub()
        await pubsub.subscribe("bench")
        task = asyncio.create_task(listen(pubsub))
        state["client"] = client
        try:
            yield
        finally:
            task.cancel()
            await pubsub.aclose()
            await client.aclose()

    app = FastAPI(lifespan=lifespan)

    @app.get("/bench/stream")
    async def stream() -> EventSourceResponse:
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=100)
        queues.add(queue)

        async def events() -> AsyncIterator[dict[str, str]]:
            try:
                while True:
                    yield {"event": "tick", "data": await queue.get()}
            finally:
                queues.discard(queue)

        return EventSourceResponse(events(), ping=15)

    @app.get("/bench/publish")
    async def publish() -> JSONResponse:
        sent = repr(time.monotonic())
        if redis_url is None:
            deliver(sent)
        else:
            await state["client"].publish("bench", sent)
        return JSONResponse({})

    @app.get("/health")
    async def health() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return app


def floor() -> Any:
    """A bare ASGI app on uvicorn holding each stream open with nothing else: the
    request task waits for the disconnect, as little as an idle stream can cost here."""
    streams: set[Any] = set()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    path = Path(os.environ["BENCH_COOKIE_FILE"])
                    await asyncio.to_thread(path.write_text, "none=none")
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["path"] == "/health":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        await send({"type": "http.response.body", "body": b": open\r\n\r\n", "more_body": True})
        streams.add(send)
        try:
            while (await receive())["type"] != "http.disconnect":
                pass
        finally:
            streams.discard(send)

    return app
