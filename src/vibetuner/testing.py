"""The vibetuner pytest plugin (registered through the ``pytest11`` entry point).

Fixtures, each fresh per test:

* ``vibetuner_settings`` -- ``Settings`` for tests: temporary data, blob and outbox
  directories, the ``file`` email backend, a random session key.
* ``mongo_backend`` -- ``"memory"``, or ``"mongodb"`` when ``TEST_MONGODB_URL`` is set.
  Parametrize it indirectly with both to run a test on each; the real-server run is
  skipped, with the reason printed, when ``TEST_MONGODB_URL`` is unset.
* ``vibetuner_db`` -- a fresh database (in memory, or a uniquely named one on the real
  server, dropped afterwards) with the core models registered.
* ``app`` -- the app under test with its lifespan running. The app comes from the
  ``vibetuner_app`` ini option (``package.module:factory``, called with
  ``settings=``); without it, a bare ``create_app`` with the auth and blob routers.
* ``client`` -- an ``httpx.AsyncClient`` on ``app``.
* ``user`` / ``signed_in_client`` -- a new user and a client whose session is signed in.
"""

from __future__ import annotations

import base64
import importlib
import json
import os
import secrets
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

TEST_MONGODB_URL_ENV = "TEST_MONGODB_URL"
BACKENDS = ("memory", "mongodb")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "vibetuner_app",
        "App factory for the vibetuner fixtures, as 'package.module:function' (called with settings=)",
        default="",
    )


def real_mongodb_url() -> str | None:
    """``TEST_MONGODB_URL`` when set and not empty."""
    return os.environ.get(TEST_MONGODB_URL_ENV) or None


@pytest.fixture
def mongo_backend(request: pytest.FixtureRequest) -> str:
    """Which database the test runs on; see the module docstring."""
    backend = getattr(request, "param", None) or ("mongodb" if real_mongodb_url() else "memory")
    if backend not in BACKENDS:
        raise ValueError(f"unknown mongo_backend {backend!r}; use one of {BACKENDS}")
    if backend == "mongodb" and real_mongodb_url() is None:
        pytest.skip(f"real MongoDB run skipped: {TEST_MONGODB_URL_ENV} is not set")
    return backend


@pytest.fixture
def vibetuner_settings(tmp_path: Path, mongo_backend: str) -> Any:
    """Settings for one test, isolated in ``tmp_path``."""
    from vibetuner.config import Settings

    values: dict[str, Any] = {
        "environment": "test",
        "data_dir": tmp_path / "data",
        "blob_dir": tmp_path / "blobs",
        "email_backend": "file",
        "email_file_dir": tmp_path / "outbox",
        "session_key": secrets.token_urlsafe(48),
        "base_url": "http://testserver",
        "blob_backend": "local",
        "mongodb_url": None,
        "mongodb_db": None,
    }
    if mongo_backend == "mongodb":
        values["mongodb_url"] = real_mongodb_url()
        values["mongodb_db"] = f"vibetuner_test_{uuid.uuid4().hex[:12]}"
    return Settings(_env_file=None, **values)


@pytest.fixture
async def vibetuner_db(vibetuner_settings: Any) -> AsyncIterator[Any]:
    """A fresh database with the core models registered; yields the ``Mongo`` handle."""
    from vibetuner.frontend.lifespan import document_models
    from vibetuner.mongo import connect, init_models

    mongo = await connect(vibetuner_settings)
    try:
        await init_models(mongo, document_models())
        yield mongo
    finally:
        if not mongo.in_memory:
            await mongo.client.drop_database(mongo.database.name)
        await mongo.close()


def load_app_factory(config: pytest.Config) -> Callable[..., Any]:
    """The factory named by the ``vibetuner_app`` ini option, else the default one."""
    spec = str(config.getini("vibetuner_app") or "").strip()
    if not spec:
        return default_app
    module_name, _, attr = spec.partition(":")
    if not attr:
        raise pytest.UsageError(f"vibetuner_app must look like 'package.module:function', got {spec!r}")
    return getattr(importlib.import_module(module_name), attr)


def default_app(*, settings: Any) -> Any:
    """A bare vibetuner app with the framework's routers, for testing the framework."""
    from vibetuner import create_app
    from vibetuner.frontend.routers import default_routers

    return create_app(settings=settings, routers=default_routers())


@pytest.fixture
async def app(request: pytest.FixtureRequest, vibetuner_settings: Any) -> AsyncIterator[Any]:
    """The app under test, with its lifespan (database, models, services) running."""
    factory = load_app_factory(request.config)
    application = factory(settings=vibetuner_settings)
    async with application.router.lifespan_context(application):
        yield application
        mongo = application.state.mongo
        if not mongo.in_memory:
            await mongo.client.drop_database(mongo.database.name)


@pytest.fixture
async def client(app: Any) -> AsyncIterator[Any]:
    """An ``httpx.AsyncClient`` talking to ``app`` in process."""
    import httpx

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
async def user(app: Any) -> Any:
    """A new, active user with a verified email."""
    from vibetuner.models import UserModel
    from vibetuner.models.mixins import utcnow

    person = UserModel(
        email=f"user-{uuid.uuid4().hex[:8]}@example.com", name="Test User", email_verified_at=utcnow()
    )
    await person.insert()
    return person


def session_cookie(settings: Any, data: dict[str, Any]) -> str:
    """A session cookie value exactly as Starlette's ``SessionMiddleware`` signs it."""
    import itsdangerous

    signer = itsdangerous.TimestampSigner(settings.session_key.get_secret_value())
    payload = base64.b64encode(json.dumps(data).encode("utf-8"))
    return signer.sign(payload).decode("utf-8")


@pytest.fixture
async def signed_in_client(app: Any, user: Any) -> AsyncIterator[Any]:
    """An ``httpx.AsyncClient`` whose session cookie signs in ``user``."""
    import httpx

    from vibetuner.frontend.sessions import SESSION_VERSION_KEY, USER_ID_KEY

    settings = app.state.settings
    cookie = session_cookie(settings, {USER_ID_KEY: str(user.id), SESSION_VERSION_KEY: user.session_version})
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://testserver",
        cookies={settings.session_cookie: cookie},
    ) as http:
        yield http
