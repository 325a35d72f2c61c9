"""The vibetuner pytest plugin (registered through the ``pytest11`` entry point).

Fixtures, each fresh per test:

* ``vibetuner_settings`` -- ``Settings`` for tests: temporary data, blob and outbox
  directories, the ``file`` email backend, a random session key, rate limits off
  (``rate_limit_enabled``; the sign-in limits stay on).
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
* ``client_for`` -- ``client_for(some_user)`` gives another signed-in client.
* ``outbox`` -- the emails sent so far (the ``file`` backend's ``.eml`` files), parsed.
* ``mongo_commands`` -- counts the commands the app sends to MongoDB (real server only):
  ``with mongo_commands() as sent: ...`` then ``[str(c) for c in sent]``, for example
  ``["aggregate user_sessions"]``. On the in-memory database the test is skipped.
* ``blob_store`` -- a ``BlobStore`` on local disk in a temporary directory: the app's
  when the test also uses ``app``, else one of its own on ``vibetuner_db``.

The clients send the CSRF token the way a page's script does (:func:`send_csrf_token`):
before their first unsafe request with a session cookie they fetch a page, read its
``<meta name="csrf-token">`` and send it as ``X-CSRF-Token`` from then on. Forms can
also take it from a page with :func:`csrf_token_in`.
"""

from __future__ import annotations

import base64
import email
import email.policy
import importlib
import json
import os
import re
import secrets
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

TEST_MONGODB_URL_ENV = "TEST_MONGODB_URL"
BACKENDS = ("memory", "mongodb")


def app_context(app: Any) -> Any:
    """The ``AppContext`` of ``app`` (settings, database, blob store, services)."""
    from vibetuner.web.context import app_context as context_of

    return context_of(app)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "vibetuner_app",
        "App factory for the vibetuner fixtures: 'package.module:function', called with settings=",
        default="",
    )


def pytest_configure(config: pytest.Config) -> None:
    # PyMongo hands a registered listener only to clients made afterwards: register the
    # command counter before any test connects (it records nothing until asked).
    if real_mongodb_url() is not None:
        from vibetuner.command_log import command_log

        command_log()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (for test servers)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


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
        "redis_url": None,
        # Tests send many requests at once from one address: the app-wide and route
        # limits are off unless a test turns them on (the sign-in limits stay).
        "rate_limit_enabled": False,
    }
    if mongo_backend == "mongodb":
        values["mongodb_url"] = real_mongodb_url()
        values["mongodb_db"] = f"vibetuner_test_{uuid.uuid4().hex[:12]}"
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
async def vibetuner_db(vibetuner_settings: Any) -> AsyncIterator[Any]:
    """A fresh database with the core models registered; yields the ``Mongo`` handle."""
    from vibetuner.context import document_models
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
        raise pytest.UsageError(
            f"vibetuner_app must look like 'package.module:function', got {spec!r}"
        )
    factory: Callable[..., Any] = getattr(importlib.import_module(module_name), attr)
    return factory


def default_app(*, settings: Any) -> Any:
    """A vibetuner app with the built-in features, for testing the framework."""
    from vibetuner import create_app

    return create_app(settings=settings)


@pytest.fixture
async def app(request: pytest.FixtureRequest, vibetuner_settings: Any) -> AsyncIterator[Any]:
    """The app under test, with its lifespan (database, models, services) running."""
    factory = load_app_factory(request.config)
    application = factory(settings=vibetuner_settings)
    async with application.router.lifespan_context(application):
        yield application
        mongo = app_context(application).mongo
        if not mongo.in_memory:
            await mongo.client.drop_database(mongo.database.name)


@pytest.fixture
def mongo_commands(request: pytest.FixtureRequest, mongo_backend: str) -> Callable[[], Any]:
    """``with mongo_commands() as sent:`` collects the commands the app sends to its database.

    Needs a real server (``TEST_MONGODB_URL``): the in-memory database sends no commands.
    """
    from vibetuner.command_log import command_log

    if mongo_backend != "mongodb":
        pytest.skip(f"counting database commands needs a real server: set {TEST_MONGODB_URL_ENV}")
    log = command_log()  # registered at start-up (pytest_configure), before any client
    application = request.getfixturevalue("app")

    def record() -> Any:
        return log.record(app_context(application).mongo.database.name)

    return record


@pytest.fixture
async def client(app: Any) -> AsyncIterator[Any]:
    """An ``httpx.AsyncClient`` talking to ``app`` in process."""
    import httpx

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield send_csrf_token(http, app_context(app).settings.session_cookie)


@pytest.fixture
async def user(app: Any) -> Any:
    """A new, active user with a verified email."""
    from vibetuner.models import UserModel
    from vibetuner.models.mixins import utcnow

    person = UserModel(
        email=f"user-{uuid.uuid4().hex[:8]}@example.com",
        name="Test User",
        email_verified_at=utcnow(),
    )
    await person.insert()
    return person


def session_cookie(settings: Any, data: dict[str, Any]) -> str:
    """A session cookie value exactly as Starlette's ``SessionMiddleware`` signs it."""
    import itsdangerous

    from vibetuner.services.keys import signing_key

    signer = itsdangerous.TimestampSigner(signing_key(settings))
    payload = base64.b64encode(json.dumps(data).encode("utf-8"))
    return signer.sign(payload).decode("utf-8")


def set_session_cookie(http: Any, settings: Any, value: str) -> None:
    """Put a session cookie in ``http``'s jar where the server's own cookies go.

    httpx files cookies of a dotless host such as ``testserver`` under
    ``testserver.local``; a cookie set there is replaced when the app signs out.
    """
    http.cookies.set(settings.session_cookie_name, value, domain="testserver.local", path="/")


async def signed_in_cookie(settings: Any, user: Any) -> str:
    """A session cookie value that signs ``user`` in: a real server-side session."""
    from vibetuner.auth.sessions import start_session
    from vibetuner.web.identity import SESSION_TOKEN_KEY

    token = await start_session(user, settings)
    return session_cookie(settings, {SESSION_TOKEN_KEY: token})


@pytest.fixture
async def signed_in_client(app: Any, user: Any) -> AsyncIterator[Any]:
    """An ``httpx.AsyncClient`` whose session cookie signs in ``user``."""
    import httpx

    settings = app_context(app).settings
    cookie = await signed_in_cookie(settings, user)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        set_session_cookie(http, settings, cookie)
        yield send_csrf_token(http, settings.session_cookie_name)


@pytest.fixture
async def client_for(app: Any) -> AsyncIterator[Callable[[Any], Any]]:
    """A factory of signed-in clients: ``await client_for(user)`` -> ``httpx.AsyncClient``."""
    import httpx

    settings = app_context(app).settings
    opened: list[httpx.AsyncClient] = []

    async def make(person: Any) -> httpx.AsyncClient:
        cookie = await signed_in_cookie(settings, person)
        http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        )
        set_session_cookie(http, settings, cookie)
        opened.append(http)
        signed_in: httpx.AsyncClient = send_csrf_token(http, settings.session_cookie_name)
        return signed_in

    yield make
    for http in opened:
        await http.aclose()


URL_PATTERN = re.compile(r"https?://[^\s<>\"']+")
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')
CSRF_PAGE = "/auth/login"
UNSAFE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


def csrf_token_in(page: str) -> str:
    """The token of a page's ``<meta name="csrf-token">``; AssertionError without one."""
    found = CSRF_META.search(page)
    assert found, "the page has no csrf-token meta tag"
    return found.group(1)


async def fetch_csrf_token(http: Any, page: str = CSRF_PAGE) -> str:
    """GET ``page`` with ``http`` (keeping the session cookie it sets) and return its token.

    ``http`` also sends the token as ``X-CSRF-Token`` from then on.
    """
    response = await http.get(page, headers={"Accept": "text/html"})
    assert response.status_code == 200, (page, response.status_code)
    token = csrf_token_in(response.text)
    http.headers["X-CSRF-Token"] = token
    return token


async def follow_sign_in_link(http: Any, link: str) -> Any:
    """Open an emailed sign-in link with ``http`` and press its confirmation button.

    The link's page asks "Sign in as ...?" and uses nothing; the button posts to the same
    address with the page's CSRF token. Returns the answer to that post (303 when signed
    in), or the page's answer when it is not the confirmation page.
    """
    from urllib.parse import urlsplit

    parts = urlsplit(link)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    page = await http.get(path, headers={"Accept": "text/html"})
    if page.status_code != 200:
        return page
    http.headers.pop("X-CSRF-Token", None)  # the form's token is the one to send
    answer = await http.post(
        path, data={"csrf_token": csrf_token_in(page.text)}, headers={"Accept": "text/html"}
    )
    # Signing in starts a new session with a new CSRF secret: a token kept from before
    # is stale, so the next unsafe request fetches a fresh one (as a reloaded page would).
    http.headers.pop("X-CSRF-Token", None)
    return answer


async def csrf_session(app: Any, cookie: str, page: str = CSRF_PAGE) -> tuple[str, str]:
    """For raw HTTP clients: the session cookie ``cookie`` after a visit to ``page``
    (which stores the token's secret in it) and the page's CSRF token."""
    import httpx

    settings = app_context(app).settings
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        set_session_cookie(http, settings, cookie)
        token = await fetch_csrf_token(http, page)
        return http.cookies[settings.session_cookie], token


def send_csrf_token(http: Any, session_cookie: str, page: str = CSRF_PAGE) -> Any:
    """Make ``http`` (an ``httpx.AsyncClient``) send the CSRF token like a page's script.

    Before an unsafe request that carries the session cookie (named ``session_cookie``)
    and no token, it fetches
    ``page`` and sends its token as ``X-CSRF-Token`` (then and afterwards). Returns
    ``http``.
    """

    async def add_token(request: Any) -> None:
        if request.method not in UNSAFE_METHODS or "x-csrf-token" in request.headers:
            return
        if session_cookie not in request.headers.get("cookie", ""):
            return  # no session cookie: the request is not checked for a token
        token = await fetch_csrf_token(http, page)
        request.headers["X-CSRF-Token"] = token
        # The page stored the token's secret in the session: send the new cookie.
        del request.headers["Cookie"]
        http.cookies.set_cookie_header(request)

    http.event_hooks["request"].append(add_token)
    return http


class Outbox:
    """The emails the ``file`` backend wrote to ``directory``, oldest first.

    Every access reads the directory again, so it sees messages sent since the last look.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    @property
    def messages(self) -> list[EmailMessage]:
        """Every message sent so far, parsed, oldest first (file names start with the time)."""
        if not self.directory.is_dir():
            return []
        return [
            email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            for path in sorted(self.directory.glob("*.eml"))
        ]

    def __len__(self) -> int:
        return len(self.messages)

    def __iter__(self) -> Iterator[EmailMessage]:
        return iter(self.messages)

    def __getitem__(self, index: int) -> EmailMessage:
        return self.messages[index]

    @property
    def last(self) -> EmailMessage:
        """The newest message; ``AssertionError`` when none was sent."""
        messages = self.messages
        assert messages, f"no email was sent (nothing in {self.directory})"
        return messages[-1]

    def to(self, address: str) -> list[EmailMessage]:
        """Messages with ``address`` among their recipients (any letter case)."""
        wanted = address.strip().lower()
        return [
            m
            for m in self.messages
            if any(wanted == a.addr_spec.lower() for h in ("To", "Cc") for a in _addresses(m, h))
        ]

    @staticmethod
    def text(message: EmailMessage) -> str:
        """The plain-text body (else the HTML body) of ``message``."""
        part = message.get_body(preferencelist=("plain", "html"))
        return part.get_content() if part is not None else ""

    def links(self, message: EmailMessage | None = None) -> list[str]:
        """The URLs in the text of ``message`` (default: the newest one)."""
        return URL_PATTERN.findall(self.text(message if message is not None else self.last))

    def clear(self) -> None:
        """Forget the messages sent so far."""
        for path in self.directory.glob("*.eml"):
            path.unlink()


def _addresses(message: EmailMessage, header: str) -> list[Any]:
    value = message.get(header)
    return list(value.addresses) if value is not None else []


@pytest.fixture
def jobs(app: Any) -> Any:
    """The in-process job queue of the app under test (it needs ``JobsFeature``).

    ``jobs.enqueued`` lists what was queued (name, args, kwargs, delay, key);
    ``await jobs.drain()`` runs everything queued so far, and what it queues, to the end.
    """
    from vibetuner.jobs.feature import JobsFeature
    from vibetuner.jobs.inprocess import InProcessQueue

    feature = app_context(app).find_feature(JobsFeature)
    if feature is None:
        pytest.fail("the app under test has no JobsFeature")
    queue = feature.queue
    if not isinstance(queue, InProcessQueue):
        pytest.fail("the jobs fixture runs jobs in process: unset REDIS_URL for these tests")
    return queue


@pytest.fixture
def outbox(vibetuner_settings: Any) -> Outbox:
    """The emails sent during the test (``EMAIL_BACKEND=file`` in ``vibetuner_settings``)."""
    return Outbox(vibetuner_settings.email_file_dir)


@pytest.fixture
def blob_store(request: pytest.FixtureRequest) -> Any:
    """A ``BlobStore`` on local disk under the test's temporary directory.

    The app's store when the test uses ``app`` (or a fixture built on it), so both see
    the same files and database; else ``vibetuner_blob_store``.
    """
    if "app" in request.fixturenames:
        from vibetuner.blobs.store import BlobStore

        return app_context(request.getfixturevalue("app")).find(BlobStore)
    return request.getfixturevalue("vibetuner_blob_store")


@pytest.fixture
async def vibetuner_blob_store(vibetuner_settings: Any, vibetuner_db: Any) -> AsyncIterator[Any]:
    """A local ``BlobStore`` of its own on ``vibetuner_db``, without an app."""
    from vibetuner.blobs.store import BlobStore

    settings = vibetuner_settings.model_copy(update={"blob_backend": "local"})
    async with BlobStore.from_settings(settings) as store:
        yield store
