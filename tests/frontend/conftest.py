"""Browser fixtures: the scaffolded app (stylesheet built by ``vibetuner css build``) in
its own uvicorn process, and headless Chromium driven by Playwright's sync API."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.robustness.conftest import PACKAGE, LiveApp
from tests.scaffold.conftest import scaffold

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def styled_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scaffolded app whose Tailwind stylesheet was built the way a user builds it."""
    base = tmp_path_factory.mktemp("frontend")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VIBETUNER_CACHE_DIR", str(base / "cache"))
        root = scaffold(base / "proj", f"package_name={PACKAGE}")
    built = subprocess.run(
        ["vibetuner", "css", "build"], cwd=root, capture_output=True, text=True, timeout=120
    )
    assert built.returncode == 0, built.stderr
    assert (root / "src" / PACKAGE / "static" / "app.css").stat().st_size > 1000
    return root


@pytest.fixture(scope="module")
def site(styled_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    """The app served over loopback HTTP for one test module."""
    server = LiveApp(styled_project, tmp_path_factory.mktemp("site"))
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium (Debian's, or ``CHROMIUM_PATH``) for one test module."""
    from playwright.sync_api import sync_playwright

    executable = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            headless=True, executable_path=executable, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


def sign_in(page: Any, site: LiveApp, address: str) -> None:
    """Sign in through the pages: ask for a link, open it from the outbox, confirm."""
    page.goto(f"{site.url}/auth/login")
    page.fill("#email", address)
    page.click("main button[type=submit]")
    page.wait_for_selector("text=Check your inbox")
    (message,) = site.outbox.to(address)[-1:]
    (link,) = site.outbox.links(message)
    page.goto(link)
    with page.expect_navigation():
        page.click("main button[type=submit]")
