"""Two worker processes of the scaffolded app on one database and one Redis, and two
Chromium browsers, each connected to a different worker: what one does, the other shows.

Runs on a real database only (``TEST_MONGODB_URL``; ``scripts/test-wire.sh`` runs it on
the wire server): the in-memory one is not shared between processes.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.frontend.conftest import browser, styled_project  # noqa: F401 -- fixtures
from tests.jobs.redis_server import RedisServer
from tests.robustness.conftest import LiveApp
from vibetuner.testing import real_mongodb_url

pytestmark = pytest.mark.parametrize("mongo_backend", ["mongodb"], indirect=True)


@pytest.fixture
def workers(
    mongo_backend: str,
    styled_project: Path,  # noqa: F811
    tmp_path: Path,
) -> Iterator[list[LiveApp]]:
    redis = RedisServer(tmp_path)
    redis.start()
    shared = {
        "mongodb_url": real_mongodb_url(),
        "mongodb_db": f"vibetuner_rt_{uuid.uuid4().hex[:10]}",
        "redis_url": redis.url,
        "session_key": secrets.token_urlsafe(48),
    }
    started = [LiveApp(styled_project, tmp_path / f"worker{n}", **shared) for n in (1, 2)]
    try:
        for worker in started:
            worker.wait_ready()
        yield started
    finally:
        for worker in started:
            worker.stop()
        redis.stop()


def notes_page(browser: Any, worker: LiveApp, address: str) -> tuple[Any, Any]:  # noqa: F811
    """A browser signed in as ``address`` through ``worker``, on its notes page."""
    context = browser.new_context()
    cookies = worker.sign_in(address)
    context.add_cookies(
        [{"name": worker.cookie_name, "value": cookies[worker.cookie_name], "url": worker.url}]
    )
    page = context.new_page()
    page.goto(f"{worker.url}/notes")
    expect(page.locator("[data-realtime]")).to_have_attribute("data-realtime-state", "open")
    page.evaluate("() => { window.__samePage = true; }")
    return context, page


def test_a_change_through_one_worker_shows_in_a_browser_on_the_other(
    browser: Any,  # noqa: F811
    workers: list[LiveApp],
) -> None:
    first, second = workers
    address = f"two-{uuid.uuid4().hex[:10]}@example.com"
    one_context, one = notes_page(browser, first, address)
    two_context, two = notes_page(browser, second, address)

    one.fill("#note-title", "Written on worker one")
    one.click("#note-form button[type=submit]")
    expect(two.locator("#note-list article", has_text="Written on worker one")).to_be_visible()

    two.locator("#note-list article", has_text="Written on worker one").locator(
        "text=Delete"
    ).click()
    two.locator("#vt-confirm [data-confirm-yes]").click()
    expect(one.locator("#note-list article", has_text="Written on worker one")).to_have_count(0)

    assert one.evaluate("() => window.__samePage === true")
    assert two.evaluate("() => window.__samePage === true")

    # Signing out everywhere through worker one closes the stream held by worker two.
    one.goto(f"{first.url}/account")
    one.click("button:has-text('Sign out everywhere')")
    one.locator("#vt-confirm [data-confirm-yes]").click()
    expect(two.locator("[data-realtime]")).to_have_attribute("data-realtime-state", "closed")
    one_context.close()
    two_context.close()
