"""The lifespan hook: open MongoDB, register models, run the app's own lifespan, close."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any

from beanie import Document
from fastapi import FastAPI

from vibetuner.config import Settings, get_settings
from vibetuner.models import core_document_models
from vibetuner.mongo import connect, init_models

logger = logging.getLogger("vibetuner")

AppLifespan = Callable[[FastAPI], AbstractAsyncContextManager[Any]]


def document_models(app_models: Sequence[type[Document]] = ()) -> list[type[Document]]:
    """Core models (``vibetuner.models.__all__``) followed by the app's, without repeats."""
    merged: list[type[Document]] = []
    for model in [*core_document_models(), *app_models]:
        if model not in merged:
            merged.append(model)
    return merged


def vibetuner_lifespan(
    models: Sequence[type[Document]] = (),
    *,
    settings: Settings | None = None,
    app_lifespan: AppLifespan | None = None,
) -> Callable[[FastAPI], AbstractAsyncContextManager[Any]]:
    """Build a FastAPI lifespan that registers core and app ``models``.

    On startup it connects to MongoDB (``MONGODB_URL``, else in memory), registers the
    models with Beanie and builds their indexes, then enters ``app_lifespan`` (the app's
    own, which therefore sees a ready database). On shutdown it leaves the app's lifespan,
    closes resources opened by services (``app.state.resources``) and the client.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Any]:
        active = settings or getattr(app.state, "settings", None) or get_settings()
        app.state.settings = active
        mongo = await connect(active)
        async with AsyncExitStack() as stack:
            stack.push_async_callback(mongo.close)
            await init_models(mongo, document_models(models))
            app.state.mongo = mongo
            app.state.resources = await stack.enter_async_context(AsyncExitStack())
            from vibetuner.services.blob import BlobStore

            store = BlobStore.from_settings(active)
            app.state.blobs = await app.state.resources.enter_async_context(store)
            if _has_route(app, "login_page"):
                # Sign-in settings are checked now, not on the first sign-in.
                from vibetuner.web.auth import init_auth

                init_auth(app)
            # Everything built so far lives as long as the app: keep it out of the
            # garbage collector's full passes, which otherwise walk it again and again
            # (about 10% of throughput on small requests). Not in tests, which start
            # many apps in one process and would keep their leftovers forever.
            if active.environment != "test":
                gc.freeze()
            logger.info("vibetuner started (database: %s)", mongo.hosts)
            if app_lifespan is None:
                yield None
            else:
                async with app_lifespan(app) as state:
                    yield state

    return lifespan


def _has_route(app: FastAPI, name: str) -> bool:
    from starlette.routing import NoMatchFound

    try:
        app.url_path_for(name)
    except NoMatchFound:
        return False
    return True
