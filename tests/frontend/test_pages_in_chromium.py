"""The scaffolded app as a person uses it, in headless Chromium: sign in, notes with
htmx (create with an attachment, edit in place, delete with confirmation and undo),
the account page, session revoking and the colour theme."""

from __future__ import annotations

import re
import uuid
from typing import Any

from tests.frontend.conftest import sign_in
from tests.robustness.conftest import LiveApp

MiB = 1024 * 1024
# Records every state of the upload progress bar, and marks the document: a full page
# load would lose the mark.
WATCH_PROGRESS = """() => {
  window.__samePage = true;
  window.__progress = [];
  const bar = document.querySelector('#upload-progress');
  new MutationObserver(() => {
    window.__progress.push([bar.hidden, Number(bar.getAttribute('aria-valuenow'))]);
  }).observe(bar, {attributes: true});
}"""


def new_address() -> str:
    return f"user-{uuid.uuid4().hex[:10]}@example.com"


def test_notes_with_htmx(browser: Any, site: LiveApp) -> None:
    context = browser.new_context()
    page = context.new_page()
    sign_in(page, site, new_address())
    assert "Welcome! Your account is ready." in page.inner_text("#flashes")

    page.goto(f"{site.url}/notes")
    assert "No notes yet" in page.inner_text("#note-list")

    # Create, with a 3 MiB attachment over a throttled link so the progress bar moves.
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": MiB},
    )
    page.evaluate(WATCH_PROGRESS)
    page.fill("#note-title", "Holiday")
    page.fill("#note-body", "Pack the camera")
    page.set_input_files(
        "#note-files",
        [
            {
                "name": "photos.bin",
                "mimeType": "application/octet-stream",
                "buffer": b"x" * (3 * MiB),
            }
        ],
    )
    assert "photos.bin" in page.inner_text("[data-previews]")
    page.click("#note-form button[type=submit]")
    page.wait_for_selector("#note-list article >> text=Holiday", timeout=30_000)
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )
    progress = page.evaluate("window.__progress")
    shown = [value for hidden, value in progress if not hidden]
    assert any(0 < value < 100 for value in shown), progress
    assert progress[-1][0] is True  # hidden again when done
    assert page.evaluate("window.__samePage") is True  # no full reload
    assert page.input_value("#note-title") == ""  # the form was cleared
    assert "Saved “Holiday”." in page.inner_text("#flashes")
    assert "1 file" in page.inner_text("#note-list article")

    # Edit in place.
    page.click("#note-list article >> text=Edit")
    page.wait_for_selector("#note-list form input[name=title]")
    page.fill("#note-list form input[name=title]", "Holiday 2027")
    page.click("#note-list form button[type=submit]")
    page.wait_for_selector("#note-list article >> text=Holiday 2027")
    assert page.evaluate("window.__samePage") is True

    # Delete asks first; cancelling keeps the note.
    page.click("#note-list article >> text=Delete")
    dialog = page.locator("#vt-confirm")
    dialog.wait_for(state="visible")
    assert "Delete “Holiday 2027”?" in dialog.inner_text()
    dialog.locator("button", has_text="Cancel").click()
    assert page.locator("#note-list article").count() == 1

    page.click("#note-list article >> text=Delete")
    dialog.locator("[data-confirm-yes]").click()
    page.wait_for_selector("#note-list article", state="detached")
    flash = page.locator(".vt-flash", has_text="Deleted “Holiday 2027”.")
    flash.wait_for()
    flash.locator("button", has_text="Undo").click()
    page.wait_for_selector("#note-list article >> text=Holiday 2027")
    assert page.evaluate("window.__samePage") is True

    # The note page shows the attachment; signing out from the user menu works.
    page.click("#note-list article a >> text=Holiday 2027")
    page.wait_for_selector("text=photos.bin")
    page.click("summary[aria-label='Account menu']")
    page.click(".vt-menu-panel button:has-text('Sign out')")
    page.wait_for_selector("text=Sign in to start")
    context.close()


def test_a_validation_error_shows_inline_without_losing_input(browser: Any, site: LiveApp) -> None:
    context = browser.new_context()
    page = context.new_page()
    sign_in(page, site, new_address())
    page.goto(f"{site.url}/notes")
    page.fill("#note-title", "   ")
    page.fill("#note-body", "keep me")
    page.click("#note-form button[type=submit]")
    page.wait_for_selector("#note-title-error")
    assert page.inner_text("#note-title-error") == "Give the note a title."
    assert page.input_value("#note-body") == "keep me"
    assert page.get_attribute("#note-title", "aria-invalid") == "true"
    context.close()


def test_account_page_profile_and_sessions(browser: Any, site: LiveApp) -> None:
    address = new_address()
    laptop, phone = browser.new_context(), browser.new_context(user_agent="Phone/1.0")
    page, other = laptop.new_page(), phone.new_page()
    sign_in(page, site, address)
    sign_in(other, site, address)

    page.goto(f"{site.url}/account")
    page.fill("#name", "Ada Lovelace")
    page.click("#profile button:has-text('Save name')")
    page.wait_for_selector("#profile >> text=Ada Lovelace")
    assert "Your name was saved." in page.inner_text("#flashes")

    png = (
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00"
        b"\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff"
        b"\x89\x99=\x1d\x00\x00\x00\x00IEND\xaeB`\x82"
    )
    page.set_input_files("#picture", [{"name": "me.png", "mimeType": "image/png", "buffer": png}])
    page.click("#profile button:has-text('Upload picture')")
    page.wait_for_selector("#profile img")
    src = page.get_attribute("#profile img", "src")
    assert src and re.fullmatch(r"/blobs/[0-9a-f]{24}/content", src)
    assert page.evaluate("(src) => fetch(src).then(r => r.status)", src) == 200

    # Two sessions; this one is marked, the phone's is signed out from here.
    page.reload()
    rows = page.locator("#sessions li")
    assert rows.count() == 2
    assert "This device" in page.inner_text("#sessions li:has-text('This device')")
    phone_row = page.locator("#sessions li", has_text="Phone/1.0")
    phone_row.locator("button").click()
    page.wait_for_function("document.querySelectorAll('#sessions li').length === 1")
    assert "That browser was signed out." in page.inner_text("#flashes")
    other.goto(f"{site.url}/notes")
    assert "/auth/login" in other.url

    # Sign out of this device from the same list: back home, signed out.
    page.locator("#sessions li button").click()
    page.wait_for_url(f"{site.url}/")
    assert "Sign in to start" in page.content()
    laptop.close()
    phone.close()


def test_deleting_the_account_after_confirming(browser: Any, site: LiveApp) -> None:
    address = new_address()
    context = browser.new_context()
    page = context.new_page()
    sign_in(page, site, address)
    page.goto(f"{site.url}/account")
    page.fill("#confirm_email", address)
    page.click("#danger button[type=submit]")
    page.locator("#vt-confirm [data-confirm-yes]").click()
    page.wait_for_url(f"{site.url}/")
    assert "Your account and everything in it were deleted." in page.inner_text("#flashes")
    page.goto(f"{site.url}/account")
    assert "/auth/login" in page.url
    context.close()


def test_theme_follows_the_system_and_the_toggle(browser: Any, site: LiveApp) -> None:
    context = browser.new_context(color_scheme="dark")
    page = context.new_page()
    page.goto(f"{site.url}/auth/login")

    def background() -> str:
        return str(page.evaluate("getComputedStyle(document.body).backgroundColor"))

    page.wait_for_timeout(300)
    dark = background()
    page.click("button[data-theme-choice=light]")
    page.wait_for_timeout(300)
    light = background()
    assert dark != light
    assert page.get_attribute("html", "data-theme") == "light"
    page.reload()  # the choice is kept (a cookie), rendered by the server
    assert page.get_attribute("html", "data-theme") == "light"
    page.click("button[data-theme-choice=system]")
    page.wait_for_timeout(300)
    assert page.get_attribute("html", "data-theme") is None
    assert background() == dark
    context.close()
