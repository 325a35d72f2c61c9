"""The web app: vibetuner (sessions, /health, sign-in, files) plus this app's pages.

``build_app`` only builds the app; the database is opened by the app's lifespan when a
server (or the test client) starts it, so importing this module connects nowhere.
"""

from __future__ import annotations

from fastapi import FastAPI
from vibetuner import (
    AdminFeature,
    AuthFeature,
    BlobsFeature,
    JobsFeature,
    RateLimitFeature,
    Settings,
    app_context,
    create_app,
)
from vibetuner.cache import CacheFeature
from vibetuner.realtime import RealtimeFeature

# --8<-- [start:import]
from my_app.feedback import router as feedback_router

# --8<-- [end:import]
from my_app.jobs import JOBS
from my_app.models import MODELS, Note
from my_app.notes import delete_notes_of
from my_app.notes import router as notes_router
from my_app.notes_api import router as notes_api_router
from my_app.pages import router as pages_router
from my_app.settings import AppSettings
from my_app.web import LOCALES_DIR, STATIC_DIR, TEMPLATES_DIR


def build_app(settings: Settings | None = None) -> FastAPI:
    """Build the app with ``settings`` (default: read from the environment and ``.env``)."""
    app = create_app(
        # vibetuner's features: rate limits (the RATE_LIMIT_* defaults for every request,
        # and @rate_limit on routes), sign-in and the account page (/auth, /account), file
        # storage (/blobs), background jobs (in this process, or Redis with REDIS_URL)
        # and the admin at /admin (`vibetuner users promote EMAIL` makes an admin), where
        # this app's notes are listed too. The cache (CACHE_BACKEND: in this process,
        # Redis or MongoDB) keeps the home page for visitors and each user's note summary;
        # realtime events (/realtime) keep a user's open notes pages up to date with
        # changes made in their other browsers; worker.py lists what the job workers start.
        features=[
            RateLimitFeature(),
            AuthFeature(),
            BlobsFeature(),
            JobsFeature(jobs=JOBS),
            AdminFeature(models=[Note]),
            CacheFeature(),
            RealtimeFeature(),
        ],
        models=MODELS,
        # The notes API (/api/notes) takes personal API tokens from the account page.
        # --8<-- [start:routers]
        routers=[pages_router, notes_router, notes_api_router, feedback_router],
        # --8<-- [end:routers]
        # This app's templates, searched before vibetuner's own, and its static files
        # (the stylesheet `vibetuner css build` makes), served at /static.
        template_dirs=[TEMPLATES_DIR],
        static_dirs=[STATIC_DIR],
        # Its translations (vibetuner i18n ...), on top of vibetuner's own.
        locale_dirs=[LOCALES_DIR],
        settings=settings or AppSettings(),
    )
    # Deleting an account removes the user's notes too (vibetuner removes their files).
    app_context(app).user_data_cleaners.append(delete_notes_of)
    return app


app = build_app()
