"""`vibetuner run dev|prod` in operation: the app's log lines, one traceback per error,
request ids in every line, and a graceful stop on SIGTERM."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import stop_process
from vibetuner.testing import free_port

APP = textwrap.dedent(
    """
    import asyncio
    import logging

    from fastapi import APIRouter

    from vibetuner import create_app

    router = APIRouter()
    log = logging.getLogger("opsapp")


    @router.get("/hello")
    async def hello() -> dict:
        log.info("hello from the app")
        return {"ok": True}


    @router.get("/boom")
    async def boom() -> dict:
        raise RuntimeError("kaboom-marker")


    @router.get("/slow")
    async def slow(seconds: float = 2.0) -> dict:
        log.info("slow request started")
        await asyncio.sleep(seconds)
        return {"slept": seconds}


    app = create_app(features=[], routers=[router])
    """
)
TRACEBACK = "Traceback (most recent call last)"
# uvicorn stops cleanly on SIGTERM, then ends by the same signal (as an unhandled SIGTERM
# would): the exit status orchestrators expect from a terminated process.
STOPPED = (0, -signal.SIGTERM)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "opsproject"
    root.mkdir()
    (root / "pyproject.toml").write_text('[tool.vibetuner]\napp = "opsapp:app"\n')
    (root / "opsapp.py").write_text(APP)
    return root


class Server:
    """A `vibetuner run ...` process; its output goes to a file the test reads."""

    def __init__(self, project: Path, mode: str, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = project / f"{mode}.log"
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("MONGODB_", "LOG_"))}
        clean.update(
            {
                "ENVIRONMENT": "test",
                "SESSION_KEY": secrets.token_urlsafe(48),
                "DATA_DIR": str(project / "data"),
                "NO_COLOR": "1",
                **env,
            }
        )
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "vibetuner.cli", "run", mode]
                + ["--host", "127.0.0.1", "--port", str(self.port)],
                cwd=project,
                env=clean,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while True:
            assert self.process.poll() is None, self.output
            try:
                if httpx.get(f"{self.url}/health/live", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, self.output
            time.sleep(0.1)

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def json_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.output.splitlines() if line.startswith("{")]

    def wait_for(self, text: str, seconds: float = 20) -> None:
        deadline = time.monotonic() + seconds
        while text not in self.output:
            assert time.monotonic() < deadline, (text, self.output)
            time.sleep(0.05)


@pytest.fixture
def start(project: Path) -> Iterator[Callable[..., Server]]:
    servers: list[Server] = []

    def make(mode: str, **env: str) -> Server:
        server = Server(project, mode, env)
        servers.append(server)
        return server

    yield make
    for server in servers:
        stop_process(server.process)


def test_run_prod_logs_json_lines_with_request_ids_and_one_traceback(
    start: Callable[..., Server],
) -> None:
    server = start("prod", LOG_FORMAT="json")
    hello = httpx.get(f"{server.url}/hello")
    boom = httpx.get(f"{server.url}/boom", headers={"Accept": "application/json"})
    assert boom.status_code == 500 and boom.json()["request_id"] == boom.headers["X-Request-ID"]
    server.wait_for("GET /boom HTTP/1.1")
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=30) in STOPPED, server.output
    assert "Application shutdown complete." in server.output

    entries = server.json_lines()
    (said,) = [e for e in entries if e["message"] == "hello from the app"]
    assert said["logger"] == "opsapp" and said["level"] == "INFO"
    assert said["request_id"] == hello.headers["X-Request-ID"] and said["route"] == "/hello"
    (access,) = [e for e in entries if e["logger"] == "uvicorn.access" and "/hello" in e["message"]]
    assert access["status"] == 200 and access["request_id"] == hello.headers["X-Request-ID"]
    assert isinstance(access["duration_ms"], float) and access["method"] == "GET"
    assert any(e["message"].startswith("Uvicorn running on") for e in entries)
    # The error: one line from vibetuner, one traceback from the server, both with the id.
    failed = [e for e in entries if e.get("request_id") == boom.headers["X-Request-ID"]]
    assert {e["logger"] for e in failed} == {"vibetuner.errors", "uvicorn.error", "uvicorn.access"}
    assert server.output.count(TRACEBACK) == 1, server.output
    assert server.output.count("kaboom-marker") == 3  # the error line, the traceback's, its text


def test_run_dev_prints_readable_lines_and_each_traceback_once(
    start: Callable[..., Server],
) -> None:
    server = start("dev", ENVIRONMENT="development", LOG_LEVELS="uvicorn.access=WARNING")
    hello = httpx.get(f"{server.url}/hello")
    page = httpx.get(f"{server.url}/boom", headers={"Accept": "text/html"})
    assert page.status_code == 500 and "kaboom-marker" in page.text  # the debug page
    server.wait_for(TRACEBACK)
    server.wait_for("hello from the app")
    time.sleep(0.5)
    output = server.output
    (line,) = [line for line in output.splitlines() if "hello from the app" in line]
    assert " INFO " in line and "opsapp: hello from the app" in line
    assert f"request_id={hello.headers['X-Request-ID']}" in line
    assert not line.startswith("{")
    assert output.count(TRACEBACK) == 1, output
    # LOG_LEVELS quieted the access log.
    assert '"GET /hello HTTP/1.1" 200' not in output


def test_sigterm_lets_a_request_in_flight_finish_then_exits(
    start: Callable[..., Server],
) -> None:
    server = start("prod", SHUTDOWN_GRACE_SECONDS="15")
    answers: list[httpx.Response] = []
    slow = threading.Thread(
        target=lambda: answers.append(httpx.get(f"{server.url}/slow?seconds=2", timeout=30))
    )
    slow.start()
    server.wait_for("slow request started")
    server.process.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    with pytest.raises(httpx.ConnectError):  # no longer accepting
        httpx.get(f"{server.url}/hello", timeout=2)
    slow.join(timeout=30)
    assert answers and answers[0].status_code == 200 and answers[0].json() == {"slept": 2.0}
    assert server.process.wait(timeout=30) in STOPPED, server.output
    assert "Application shutdown complete." in server.output


def test_a_request_longer_than_the_grace_does_not_hold_the_stop(
    start: Callable[..., Server],
) -> None:
    server = start("prod", SHUTDOWN_GRACE_SECONDS="1")
    slow = threading.Thread(
        target=lambda: httpx.get(f"{server.url}/slow?seconds=60", timeout=70), daemon=True
    )
    slow.start()
    server.wait_for("slow request started")
    stopped = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    server.process.wait(timeout=30)
    assert time.monotonic() - stopped < 10, server.output


def test_behind_uvicorn_a_trusted_proxys_request_id_is_kept(
    start: Callable[..., Server],
) -> None:
    server = start("prod", TRUSTED_PROXIES="127.0.0.1")
    forwarded = {"X-Forwarded-For": "203.0.113.5", "X-Request-ID": "lb-7f3a-0001"}
    assert httpx.get(f"{server.url}/hello", headers=forwarded).headers["X-Request-ID"] == (
        "lb-7f3a-0001"
    )
    direct = {"X-Request-ID": "lb-7f3a-0002"}  # the proxy itself, without X-Forwarded-For
    assert httpx.get(f"{server.url}/hello", headers=direct).headers["X-Request-ID"] == (
        "lb-7f3a-0002"
    )


def test_behind_uvicorn_anyone_elses_request_id_is_replaced(
    start: Callable[..., Server],
) -> None:
    # The proxies are elsewhere: this client (127.0.0.1) is not one of them, whatever it sends.
    server = start("prod", TRUSTED_PROXIES="10.0.0.0/8")
    forged = {"X-Forwarded-For": "10.0.0.1", "X-Request-ID": "forged-0001"}
    answer = httpx.get(f"{server.url}/hello", headers=forged)
    assert answer.headers["X-Request-ID"] != "forged-0001"
