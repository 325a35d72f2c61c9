"""The scaffolded app's cached home page in Chromium: a second visitor gets the stored
page, and its forms (CSRF token) and scripts (CSP nonce) work for that visitor."""

from __future__ import annotations

import uuid
from typing import Any

from tests.frontend.conftest import sign_in
from tests.robustness.conftest import LiveApp


def test_a_visitor_served_the_cached_home_page_can_use_its_forms(
    browser: Any, site: LiveApp
) -> None:
    first = browser.new_context()
    first.new_page().goto(f"{site.url}/")  # renders and stores the page
    context = browser.new_context()
    page = context.new_page()
    refused: list[str] = []
    page.on(
        "console", lambda message: refused.append(message.text) if message.type == "error" else None
    )
    answer = page.goto(f"{site.url}/")
    assert answer is not None and answer.headers.get("x-cache") == "hit"
    # The language switch posts the form with this visitor's own CSRF token.
    with page.expect_navigation():
        page.select_option("#vt-locale", "es")
    assert page.get_attribute("html", "lang") == "es"
    assert "Inicia sesión para empezar" in page.inner_text("main")
    # The theme toggle too (htmx, with the token from the page's meta tag).
    page.click("button[data-theme-choice=dark]")
    page.wait_for_timeout(300)
    assert page.get_attribute("html", "data-theme") == "dark"
    page.reload()
    assert page.get_attribute("html", "data-theme") == "dark"  # its own copy, per theme
    assert refused == []
    context.close()
    first.close()


def test_the_home_page_summary_follows_the_notes(browser: Any, site: LiveApp) -> None:
    context = browser.new_context()
    page = context.new_page()
    sign_in(page, site, f"cache-{uuid.uuid4().hex[:8]}@example.com")
    page.goto(f"{site.url}/")
    assert page.locator("#note-summary").count() == 0
    page.goto(f"{site.url}/notes")
    page.fill("#note-title", "Cached summary")
    page.click("#note-form button[type=submit]")
    page.wait_for_selector('#note-list article >> text="Cached summary"')
    answer = page.goto(f"{site.url}/")
    assert answer is not None and answer.headers.get("x-cache") is None
    assert page.inner_text("#note-summary") == "You have 1 note; the newest is “Cached summary”."
    context.close()
