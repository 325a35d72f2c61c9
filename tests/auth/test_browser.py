"""Sign-in by email link in a real browser (headless Chromium driven by Playwright)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from tests.auth.conftest import free_port, magic_link, read_outbox

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_executable() -> str | None:
    """``CHROMIUM_PATH``, else ``chromium`` on the PATH; None means Playwright's own browser."""
    configured = os.environ.get("CHROMIUM_PATH")
    if configured:
        return configured
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def served_app(vibetuner_settings: Any) -> Iterator[tuple[str, Any]]:
    """The app served by uvicorn on 127.0.0.1 (free port, own thread): (base URL, settings)."""
    from vibetuner.testing import default_app

    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    settings = type(vibetuner_settings)(
        _env_file=None, **{**vibetuner_settings.model_dump(), "base_url": base_url}
    )
    server = uvicorn.Server(
        uvicorn.Config(
            default_app(settings=settings), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the app server did not start")
        time.sleep(0.05)
    try:
        yield base_url, settings
    finally:
        server.should_exit = True
        thread.join(timeout=10)


async def wait_for_mail(settings: Any) -> Any:
    async with asyncio.timeout(10):
        while True:
            messages = read_outbox(settings.email_file_dir)
            if messages:
                return messages[-1]
            await asyncio.sleep(0.05)


async def launch(playwright: Any) -> Any:
    executable = chromium_executable()
    if executable is None:
        # No system Chromium: use Playwright's own, downloading it once if needed.
        install = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "playwright", "install", "chromium"
        )
        if await install.wait() != 0:
            raise RuntimeError("no Chromium: set CHROMIUM_PATH or install the chromium package")
    return await playwright.chromium.launch(
        headless=True, executable_path=executable, args=CHROMIUM_ARGS
    )


async def test_sign_in_by_email_link_in_chromium(served_app):
    from playwright.async_api import async_playwright

    base_url, settings = served_app
    async with async_playwright() as playwright:
        browser = await launch(playwright)
        try:
            context = await browser.new_context()
            page = await context.new_page()
            await page.goto(f"{base_url}/auth/login?next=/auth/me")
            await page.fill("input[name=email]", "Browser.User@Example.com")
            await page.click("main button[type=submit]")
            await page.wait_for_selector("text=Check your inbox")
            assert "browser.user@example.com" in await page.content()

            link = magic_link(await wait_for_mail(settings))
            assert link.startswith(f"{base_url}/auth/magic-link/")
            # Opening the link only asks; nothing is used until the button is pressed.
            response = await page.goto(link)
            assert response is not None and response.status == 200
            assert "browser.user@example.com" in await page.inner_text("main form")
            async with page.expect_navigation():
                await page.click("main button[type=submit]")
            assert page.url == f"{base_url}/auth/me"
            me = json.loads(await page.inner_text("body"))
            assert me["email"] == "browser.user@example.com"
            assert me["email_verified"] is True

            [cookie] = [c for c in await context.cookies() if c["name"] == settings.session_cookie]
            assert cookie["httpOnly"] is True
            assert cookie["sameSite"] == "Lax"

            # The same link in the same browser is now refused, in plain words.
            again = await page.goto(link)
            assert again is not None and again.status == 400
            assert "already used" in await page.content()
        finally:
            await browser.close()
