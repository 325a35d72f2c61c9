"""Every worker sees a session's end at once: two server processes, one database.

A signed-in request reads its session and user fresh from the database (one round
trip), so nothing a worker keeps can outlive a change made through another. Runs on a
real server only (``TEST_MONGODB_URL``; CI runs it on the wire server).
"""

from __future__ import annotations

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
from vibetuner.testing import free_port, real_mongodb_url, session_cookie

pytestmark = pytest.mark.parametrize("mongo_backend", ["mongodb"], indirect=True)

APP = textwrap.dedent(
    """
    from vibetuner import RequireUser, create_app
    from fastapi import APIRouter

    router = APIRouter()

    @router.get("/roles")
    async def roles(user: RequireUser) -> list[str]:
        return list(user.roles)

    app = create_app(routers=[router])
    """
)


@pytest.fixture
def workers(vibetuner_db: Any, vibetuner_settings: Any, tmp_path: Path) -> Iterator[list[str]]:
    """Two uvicorn processes serving the same app on the test's database."""
    (tmp_path / "two_workers_app.py").write_text(APP)
    env = {
        **os.environ,
        "ENVIRONMENT": "test",
        "MONGODB_URL": str(real_mongodb_url()),
        "MONGODB_DB": vibetuner_db.database.name,
        "SESSION_KEY": vibetuner_settings.session_key.get_secret_value(),
        "DATA_DIR": str(tmp_path / "data"),
        "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
    }
    ports = [free_port(), free_port()]
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "two_workers_app:app", "--port", str(port)],
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
        yield urls
    finally:
        for process in processes:
            stop_process(process)


async def signed_in(settings: Any, user: Any) -> dict[str, str]:
    from vibetuner.auth.sessions import start_session
    from vibetuner.web.identity import SESSION_TOKEN_KEY

    token = await start_session(user, settings)
    return {settings.session_cookie_name: session_cookie(settings, {SESSION_TOKEN_KEY: token})}


async def statuses(urls: list[str], cookies: dict[str, str], path: str = "/auth/me") -> list[int]:
    answers = []
    for url in urls:
        async with httpx.AsyncClient(base_url=url, cookies=cookies) as http:
            answers.append((await http.get(path)).status_code)
    return answers


async def new_user() -> Any:
    from vibetuner.models import UserModel

    return await UserModel(email=f"w-{time.monotonic_ns()}@example.com").insert()


async def test_sign_out_in_one_worker_ends_the_session_in_the_other(workers, vibetuner_settings):
    user = await new_user()
    cookies = await signed_in(vibetuner_settings, user)
    assert await statuses(workers, cookies) == [200, 200]
    first, second = workers
    async with httpx.AsyncClient(base_url=first, cookies=cookies) as http:
        page = await http.get("/auth/login")
        token = page.text.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
        out = await http.post("/auth/logout", headers={"X-CSRF-Token": token})
        assert out.status_code in (200, 303), out.text
    assert await statuses([second], cookies) == [401]


async def test_deactivating_signing_out_everywhere_and_roles_reach_every_worker(
    workers, vibetuner_settings
):
    user = await new_user()
    cookies = await signed_in(vibetuner_settings, user)
    assert await statuses(workers, cookies, "/roles") == [200, 200]

    await user.set({"roles": ["admin"]})
    for url in workers:
        async with httpx.AsyncClient(base_url=url, cookies=cookies) as http:
            assert (await http.get("/roles")).json() == ["admin"]

    await user.set({"is_active": False})
    assert await statuses(workers, cookies) == [401, 401]

    other = await new_user()
    cookies = await signed_in(vibetuner_settings, other)
    assert await statuses(workers, cookies) == [200, 200]
    await other.sign_out_everywhere()
    assert await statuses(workers, cookies) == [401, 401]
