"""Realtime in the scaffolded app, in headless Chromium: a user's notes page in one
browser follows what the same user does in another, without a reload."""

from __future__ import annotations

import uuid
from typing import Any

from playwright.sync_api import expect

from tests.frontend.conftest import sign_in
from tests.robustness.conftest import LiveApp

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00"
    b"\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff"
    b"\x89\x99=\x1d\x00\x00\x00\x00IEND\xaeB`\x82"
)
# Marks the document: a full page load would lose the mark.
MARK = "() => { window.__samePage = true; }"
SAME_PAGE = "() => window.__samePage === true"


def open_notes(browser: Any, site: LiveApp, address: str) -> tuple[Any, Any]:
    """A browser (its own context, its own session) signed in as ``address`` on /notes."""
    context = browser.new_context()
    page = context.new_page()
    sign_in(page, site, address)
    page.goto(f"{site.url}/notes")
    expect(page.locator("[data-realtime]")).to_have_attribute("data-realtime-state", "open")
    page.evaluate(MARK)
    return context, page


def test_notes_follow_the_other_browser(browser: Any, site: LiveApp) -> None:
    address = f"rt-{uuid.uuid4().hex[:10]}@example.com"
    laptop, here = open_notes(browser, site, address)
    phone, there = open_notes(browser, site, address)
    stranger, elsewhere = open_notes(browser, site, f"rt-{uuid.uuid4().hex[:10]}@example.com")

    # Created here, shown there.
    here.fill("#note-title", "Groceries")
    here.fill("#note-body", "Milk")
    here.click("#note-form button[type=submit]")
    expect(there.locator("#note-list article", has_text="Groceries")).to_be_visible()

    # Edited there, shown here.
    there.click("#note-list article >> text=Edit")
    there.fill("#note-list form input[name=title]", "Groceries for Sunday")
    there.click("#note-list form button[type=submit]")
    expect(here.locator("#note-list article", has_text="Groceries for Sunday")).to_be_visible()

    # A form being filled in is not swept away by a refresh: events wait for it.
    there.click("#note-list article >> text=Edit")
    there.fill("#note-list form input[name=title]", "Half typed")
    here.fill("#note-title", "Another")
    here.click("#note-form button[type=submit]")
    expect(here.locator("#note-list article", has_text="Another")).to_be_visible()
    there.wait_for_timeout(500)
    assert there.input_value("#note-list form input[name=title]") == "Half typed"
    there.click("#note-list form a:has-text('Cancel')")  # a link: leaves for the note page
    there.goto(f"{site.url}/notes")
    there.evaluate(MARK)
    expect(there.locator("[data-realtime]")).to_have_attribute("data-realtime-state", "open")

    # Deleted here, gone there.
    here.locator("#note-list article", has_text="Another").locator("text=Delete").click()
    here.locator("#vt-confirm [data-confirm-yes]").click()
    expect(there.locator("#note-list article", has_text="Another")).to_have_count(0)

    # A picture attached here: its thumbnail (made by the job after the answer) shows there.
    here.fill("#note-title", "Photo")
    here.set_input_files(
        "#note-files", [{"name": "dot.png", "mimeType": "image/png", "buffer": PNG}]
    )
    here.click("#note-form button[type=submit]")
    card = there.locator("#note-list article", has_text="Photo")
    expect(card.locator("img[data-thumbnail]")).to_have_count(1)
    expect(
        here.locator("#note-list article", has_text="Photo").locator("img[data-thumbnail]")
    ).to_have_count(1)

    assert here.evaluate(SAME_PAGE) and there.evaluate(SAME_PAGE)
    # Another user saw none of it.
    assert elsewhere.locator("#note-list article").count() == 0

    # "Sign out everywhere" here closes the stream there (it is refused on reconnect).
    here.goto(f"{site.url}/account")
    here.click("button:has-text('Sign out everywhere')")
    here.locator("#vt-confirm [data-confirm-yes]").click()
    expect(there.locator("[data-realtime]")).to_have_attribute("data-realtime-state", "closed")
    for context in (laptop, phone, stranger):
        context.close()
