"""Two server processes share the cache: on Redis, and on MongoDB (real server only).

Each computation and each page render appends a line to a file both processes write,
so the test counts them across processes.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import stop_process
from vibetuner.testing import free_port, real_mongodb_url

APP = textwrap.dedent(
    """
    import asyncio, os
    from fastapi import APIRouter, Depends
    from fastapi.responses import HTMLResponse
    from vibetuner import create_app
    from vibetuner.cache import CacheFeature, cache_page, cached, invalidate_tags

    LOG = os.environ["WORK_LOG"]
    router = APIRouter()

    def note(line):
        with open(LOG, "a") as log:
            log.write(line + "\\n")

    @cached(ttl=60, key="slow")
    async def slow():
        note(f"computed {os.getpid()}")
        await asyncio.sleep(0.3)
        return 42

    @router.get("/count")
    async def count():
        return {"count": await slow()}

    @router.get("/page", dependencies=[Depends(cache_page(ttl=60, tags=["page"]))])
    async def page():
        note(f"rendered {os.getpid()}")
        return HTMLResponse(f"<p>rendered by {os.getpid()}</p>")

    @router.get("/touch")
    async def touch():
        await invalidate_tags("page")
        return {"ok": True}

    app = create_app(features=[CacheFeature()], routers=[router])
    """
)


@pytest.fixture(params=["redis", "mongodb"])
def shared_backend(request: pytest.FixtureRequest) -> dict[str, str]:
    if request.param == "redis":
        return {"CACHE_BACKEND": "redis", "REDIS_URL": request.getfixturevalue("redis_server").url}
    url = real_mongodb_url()
    if url is None:
        pytest.skip("real MongoDB run skipped: TEST_MONGODB_URL is not set")
    return {"CACHE_BACKEND": "mongodb", "MONGODB_URL": url}


@pytest.fixture
def workers(shared_backend: dict[str, str], tmp_path: Path) -> Iterator[tuple[list[str], Path]]:
    """Two uvicorn processes serving the same app on one shared cache."""
    (tmp_path / "cache_workers_app.py").write_text(APP)
    log = tmp_path / "work.log"
    log.write_text("")
    env = {
        **os.environ,
        **shared_backend,
        "ENVIRONMENT": "test",
        "MONGODB_DB": f"cache_workers_{os.getpid()}_{time.monotonic_ns()}",
        "SESSION_KEY": "k" * 8 + "x9Qz-2vLm_Tr7bWc4NpYh6Dj0FsKa3Ue5Gi1Ro8",
        "CACHE_PREFIX": f"workers{time.monotonic_ns()}",
        "DATA_DIR": str(tmp_path / "data"),
        "WORK_LOG": str(log),
        "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
    }
    ports = [free_port(), free_port()]
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "cache_workers_app:app", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        for port in ports
    ]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        for url, process in zip(urls, processes, strict=True):
            deadline = time.monotonic() + 30
            while True:
                assert process.poll() is None, process.stderr.read().decode()[-2000:]
                try:
                    if httpx.get(f"{url}/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "a worker did not start"
                time.sleep(0.1)
        yield urls, log
    finally:
        for process in processes:
            stop_process(process)
        if "MONGODB_URL" in shared_backend:
            from pymongo import MongoClient

            with MongoClient(shared_backend["MONGODB_URL"]) as client:
                client.drop_database(env["MONGODB_DB"])


def lines(log: Path, word: str) -> list[str]:
    return [line for line in log.read_text().splitlines() if line.startswith(word)]


async def test_a_cold_key_is_computed_once_across_both_workers(workers: Any) -> None:
    urls, log = workers
    async with httpx.AsyncClient(timeout=30) as http:
        answers = await asyncio.gather(*(http.get(f"{urls[n % 2]}/count") for n in range(40)))
    assert {answer.json()["count"] for answer in answers} == {42}
    assert len(lines(log, "computed")) == 1


async def test_a_page_stored_by_one_worker_is_served_by_the_other(workers: Any) -> None:
    urls, log = workers
    # One Host for both, as behind a load balancer (each worker listens on its own port).
    html = {"Accept": "text/html", "Host": "app.example"}
    async with httpx.AsyncClient(timeout=30, headers=html) as http:
        await http.get(f"{urls[0]}/page")
        # The second worker learns the route is cacheable from its first request (which
        # runs the route and stores its page again) ...
        await http.get(f"{urls[1]}/page")
        # ... from then on both serve the one stored page.
        again = [await http.get(f"{url}/page") for url in urls for _ in range(2)]
        assert [answer.headers.get("x-cache") for answer in again] == ["hit"] * 4
        assert len({answer.text for answer in again}) == 1
        await http.get(f"{urls[1]}/touch")  # invalidated through the other worker
        fresh = await http.get(f"{urls[0]}/page")
        assert "x-cache" not in fresh.headers
    assert len(lines(log, "rendered")) == 3
