"""Load: many sign-ins and uploads at once against one running app, over loopback.

One uvicorn process of the scaffolded app (in-memory database, ``file`` email backend,
local blobs). Its database lives in that process, so everything is checked the way a
user would: by following every emailed link and downloading every file.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.robustness.conftest import LiveApp
from vibetuner.testing import follow_sign_in_link, send_csrf_token

SIGN_INS = 200
UPLOADS = 50
# No timing is asserted: these only keep a stuck server from hanging the suite.
TIMEOUT = httpx.Timeout(180.0)


@pytest.fixture(scope="module")
def live_app(project: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The app with its per-IP limit raised: every request here comes from 127.0.0.1."""
    server = LiveApp(
        project,
        tmp_path_factory.mktemp("load"),
        magic_link_rate_per_ip=10 * SIGN_INS,
    )
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def client(live_app: LiveApp, **kwargs: Any) -> httpx.AsyncClient:
    # Idle connections are dropped well before uvicorn's 5 s keep-alive ends them: a
    # request sent on a connection the server is closing at that moment gets no answer.
    limits = httpx.Limits(
        max_connections=SIGN_INS + 10, max_keepalive_connections=SIGN_INS, keepalive_expiry=1.0
    )
    return httpx.AsyncClient(base_url=live_app.url, timeout=TIMEOUT, limits=limits, **kwargs)


async def test_concurrent_sign_ins_and_uploads_lose_nothing(live_app: LiveApp) -> None:
    addresses = [f"load-{i:03d}@example.com" for i in range(SIGN_INS)]

    # 200 magic-link requests at once, for 200 different addresses.
    async with client(live_app) as http:
        start = asyncio.Event()

        async def ask(address: str) -> httpx.Response:
            await start.wait()
            return await http.post("/auth/magic-link", json={"email": address})

        asking = [asyncio.create_task(ask(address)) for address in addresses]
        await asyncio.sleep(0)
        start.set()
        answers = await asyncio.gather(*asking)
    assert [r.status_code for r in answers] == [200] * SIGN_INS, {
        r.status_code: r.text for r in answers if r.status_code != 200
    }

    # Exactly one email per address, each with one working link.
    links: dict[str, list[str]] = {}
    for message in live_app.outbox.messages:
        links.setdefault(str(message["To"]).lower(), []).extend(live_app.outbox.links(message))
    assert sorted(links) == addresses
    assert all(len(found) == 1 for found in links.values()), links

    # Follow every link at once, each in a browser of its own; every user is signed in.
    async def sign_in(address: str) -> httpx.AsyncClient:
        browser = client(live_app)
        landed = await follow_sign_in_link(browser, links[address][0])
        assert landed.status_code == 303, (address, landed.status_code, landed.text)
        me = await browser.get("/auth/me")
        assert me.status_code == 200 and me.json()["email"] == address, me.text
        # Uploads carry the CSRF token of a page, as the page's script would send it.
        return send_csrf_token(browser, live_app.cookie_name)

    browsers = await asyncio.gather(*(sign_in(address) for address in addresses))
    try:
        await check_uploads(browsers[:UPLOADS])
    finally:
        await asyncio.gather(*(browser.aclose() for browser in browsers))
    assert "Traceback" not in live_app.log()


async def check_uploads(browsers: list[httpx.AsyncClient]) -> None:
    """50 signed-in users upload at once; every file comes back whole, to its owner only."""
    chance = random.Random(6)
    files = [os.urandom(chance.randint(1, 3 * 1024 * 1024)) for _ in browsers]
    answers = await asyncio.gather(
        *(
            browser.post(
                "/blobs", files={"file": (f"load-{i}.bin", data, "application/octet-stream")}
            )
            for i, (browser, data) in enumerate(zip(browsers, files, strict=True))
        )
    )
    assert [r.status_code for r in answers] == [201] * len(browsers), {
        r.status_code: r.text for r in answers if r.status_code != 201
    }
    blobs = [r.json() for r in answers]
    assert len({blob["id"] for blob in blobs}) == len(blobs)

    async def download(browser: httpx.AsyncClient, blob: dict[str, Any]) -> bytes:
        response = await browser.get(f"/blobs/{blob['id']}/content")
        assert response.status_code == 200, response.text
        return response.content

    contents = await asyncio.gather(
        *(download(browser, blob) for browser, blob in zip(browsers, blobs, strict=True))
    )
    for data, blob, content in zip(files, blobs, contents, strict=True):
        digest = hashlib.sha256(data).hexdigest()
        assert blob["size"] == len(data) and blob["sha256"] == digest
        assert hashlib.sha256(content).hexdigest() == digest

    # A blob is its owner's: the next user sees a 404.
    stranger = await browsers[1].get(f"/blobs/{blobs[0]['id']}")
    assert stranger.status_code == 404
