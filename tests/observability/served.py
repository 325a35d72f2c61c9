"""An app served by a real ``uvicorn`` process, configured by environment variables only,
as ``vibetuner run prod`` would be: what observability reads at startup is tested as
deployed."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.helpers import stop_process
from vibetuner.testing import free_port, real_mongodb_url

SRC = Path(__file__).resolve().parents[2] / "src"
APP = """
from fastapi import APIRouter
from vibetuner import AppContext, Context, CurrentUser, JobsFeature, create_app
from vibetuner.jobs import task
from vibetuner.app import default_features

router = APIRouter()


@task(name="served.noop")
async def noop(context: AppContext, n: int) -> None:
    pass


@task(name="served.fails", max_attempts=1)
async def fails(context: AppContext, n: int) -> None:
    raise ValueError("the job failed on purpose")


@router.post("/fail")
async def fail(context: Context) -> dict:
    return {"id": await fails.enqueue(context, 1)}


@router.get("/boom")
async def boom(user: CurrentUser, token: str = "") -> None:
    password = "hunter2-" + token
    raise RuntimeError("the route failed on purpose")


@router.post("/queue")
async def queue(context: Context) -> dict:
    return {"id": await noop.enqueue(context, 1)}


app = create_app(features=[*default_features(), JobsFeature(jobs=[noop, fails])], routers=[router])
"""


@contextmanager
def served_app(tmp_path: Path, **env: str) -> Iterator[str]:
    """Serve the app above on a free port with ``env``; yields its base URL."""
    (tmp_path / "served_app.py").write_text(APP)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    environ = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("OTEL_", "METRICS_", "SENTRY_"))
    }
    environ.update(
        {
            "PYTHONPATH": f"{tmp_path}{os.pathsep}{SRC}",
            "ENVIRONMENT": "test",
            "SESSION_KEY": secrets.token_urlsafe(48),
            "BASE_URL": url,
            "DATA_DIR": str(tmp_path / "data"),
            "EMAIL_BACKEND": "file",
            "EMAIL_FILE_DIR": str(tmp_path / "outbox"),
            "LOG_FORMAT": "json",
        }
    )
    if real_mongodb_url():
        environ["MONGODB_URL"] = str(real_mongodb_url())
        environ["MONGODB_DB"] = f"served_{secrets.token_hex(6)}"
    environ.update(env)
    log = tmp_path / "server.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "served_app:app", "--port", str(port)],
        cwd=tmp_path,
        env=environ,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if httpx.get(f"{url}/health/live", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the app did not start"
            time.sleep(0.1)
        yield url
    finally:
        stop_process(process)
