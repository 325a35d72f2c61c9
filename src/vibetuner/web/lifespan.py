"""The app's lifespan: start the context (database, models, features), run the app's own, stop."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import FastAPI

from vibetuner.context import AppContext, running

logger = logging.getLogger("vibetuner")

AppLifespan = Callable[[FastAPI], AbstractAsyncContextManager[Any]]


def vibetuner_lifespan(
    context: AppContext, app_lifespan: AppLifespan | None = None
) -> Callable[[FastAPI], AbstractAsyncContextManager[Any]]:
    """A FastAPI lifespan around ``context``.

    On startup it connects to MongoDB (``MONGODB_URL``, else in memory), registers the
    core, feature and app models, enters every feature, then the app's own lifespan
    (which therefore sees a ready database). Shutdown runs the same steps backwards.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Any]:
        async with running(context):
            # Everything built so far lives as long as the app: keep it out of the
            # garbage collector's full passes, which otherwise walk it again and again
            # (about 10% of throughput on small requests). Not in tests, which start
            # many apps in one process and would keep their leftovers forever.
            if context.settings.environment != "test":
                gc.freeze()
            hosts = context.mongo.hosts if context.mongo is not None else "none"
            logger.info("vibetuner started (database: %s)", hosts)
            if app_lifespan is None:
                yield None
            else:
                async with app_lifespan(app) as state:
                    yield state

    return lifespan
