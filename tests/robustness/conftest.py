"""Robustness fixtures: a scaffolded app, served by uvicorn on 127.0.0.1.

* ``project`` -- one app rendered by ``vibetuner scaffold new`` for the whole session,
  importable from this process (its ``src`` is put on ``sys.path``).
* ``LiveApp`` / ``live_app`` -- that app in its own uvicorn process (in-memory database,
  ``file`` email backend, local blobs), reached only over loopback HTTP. Its database
  lives in the other process, so tests look at it through the app's own routes.
* ``start_app`` / ``app`` -- the same app in this process (replacing the plugin's
  ``app``), for tests that also look at the database directly.
* ``served`` -- serves an in-process app with uvicorn on a free port, in the test's loop.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from tests.helpers import stop_process
from tests.scaffold.conftest import scaffold
from vibetuner.testing import Outbox, app_context, csrf_token_in, free_port

PACKAGE = "robust_app"
MiB = 1024 * 1024


@pytest.fixture(scope="session")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A project made by ``vibetuner scaffold new --defaults``, importable from here."""
    base = tmp_path_factory.mktemp("robustness")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VIBETUNER_CACHE_DIR", str(base / "cache"))
        root = scaffold(base / "proj", f"package_name={PACKAGE}")
    sys.path.insert(0, str(root / "src"))
    try:
        yield root
    finally:
        sys.path.remove(str(root / "src"))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


class LiveApp:
    """The scaffolded app in a uvicorn process of its own, on a free 127.0.0.1 port."""

    def __init__(self, project: Path, data_dir: Path, **settings: Any) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = data_dir
        self.outbox = Outbox(data_dir / "outbox")
        self.log_path = data_dir / "server.log"
        self.cookie_name = f"{PACKAGE}_session"
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("MONGODB_", "SMTP_", "S3_", "BLOB_", "EMAIL_", "MAGIC_LINK_"))
        }
        env.update(
            {
                # The project, then whatever the tests run with (a checkout's src).
                "PYTHONPATH": os.pathsep.join(
                    [str(project / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]
                ),
                "ENVIRONMENT": "test",
                "BASE_URL": self.url,
                "DATA_DIR": str(data_dir),
                "EMAIL_BACKEND": "file",
                "EMAIL_FILE_DIR": str(data_dir / "outbox"),
                "BLOB_DIR": str(data_dir / "blobs"),
                "SESSION_KEY": secrets.token_urlsafe(48),
                "LOG_LEVEL": "WARNING",
                # These tests send load from one address on purpose (the plugin's
                # settings turn the limits off too); tests/ratelimit is about them.
                "RATE_LIMIT_ENABLED": "false",
            }
        )
        env.update({key.upper(): str(value) for key, value in settings.items()})
        data_dir.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                f"{PACKAGE}.app:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            cwd=data_dir,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, seconds: float = 60.0) -> None:
        """Wait for ``/health`` to answer 200 (generous: the machine may be busy)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the app exited early:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"the app did not start in {seconds} s:\n{self.log()}")

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        stop_process(self.process)
        self._log.close()

    def sign_in(self, address: str | None = None) -> httpx.Cookies:
        """Sign in as ``address`` (a new user by default) through the emailed link."""
        address = address or f"fuzz-{uuid.uuid4().hex[:12]}@example.com"
        with httpx.Client(base_url=self.url, timeout=30) as http:
            sent = http.post("/auth/magic-link", json={"email": address})
            assert sent.status_code == 200, sent.text
            (message,) = self.outbox.to(address)[-1:]
            (link,) = self.outbox.links(message)
            # The link's page asks "Sign in as ...?"; its button (a CSRF-checked post) signs in.
            page = http.get(link)
            assert page.status_code == 200, page.text
            landed = http.post(link, data={"csrf_token": csrf_token_in(page.text)})
            assert landed.status_code == 303, landed.text
            assert http.get("/auth/me").json()["email"] == address
            return http.cookies


@pytest.fixture(scope="module")
def live_app(project: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    """The scaffolded app in its own process, for the tests of one module."""
    server = LiveApp(project, tmp_path_factory.mktemp("live"))
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture
def app_factory(project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The scaffolded app's ``build_app``."""
    # Importing the module builds its ``app`` from the environment: in development that
    # keeps a signing key under DATA_DIR, which must not be this checkout's ./data.
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    from robust_app.app import build_app

    return build_app


@pytest.fixture
def start_app(app_factory: Any, vibetuner_settings: Any) -> Any:
    """``start_app(**settings)``: the scaffolded app in this process, lifespan running.

    Built on the plugin's ``vibetuner_settings`` (temporary directories, ``file`` email
    backend, in-memory or test database) with ``settings`` changed.
    """
    from robust_app.settings import AppSettings

    @asynccontextmanager
    async def start(**settings: Any) -> AsyncIterator[Any]:
        values = {**vibetuner_settings.model_dump(), **settings}
        application = app_factory(AppSettings(_env_file=None, **values))
        async with application.router.lifespan_context(application):
            yield application
            mongo = app_context(application).mongo
            if not mongo.in_memory:
                await mongo.client.drop_database(mongo.database.name)

    return start


@pytest.fixture
async def app(start_app: Any) -> AsyncIterator[Any]:
    """The scaffolded app in this process (replaces the plugin's ``app``)."""
    async with start_app() as application:
        yield application


@asynccontextmanager
async def served(app: Any) -> AsyncIterator[tuple[str, uvicorn.Server]]:
    """Serve ``app`` (lifespan already running) with uvicorn on 127.0.0.1, in this loop.

    Yields the base URL and the server (``idle(server)`` tells when it has finished
    every request it received).
    """
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    )
    serving = asyncio.create_task(server.serve())
    try:
        deadline = asyncio.get_running_loop().time() + 30
        while not server.started:
            if serving.done():
                serving.result()
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError("uvicorn did not start")
            await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}", server
    finally:
        server.should_exit = True
        await serving


def idle(server: uvicorn.Server) -> Any:
    """An async check: true once ``server`` has no open connection and no running request."""

    async def server_idle() -> bool:
        return not server.server_state.connections and not server.server_state.tasks

    return server_idle
