"""The scaffolded app as a person uses it, in headless Chromium: sign in, notes with
htmx (create with an attachment, edit in place, delete with confirmation and undo),
the account page, session revoking and the colour theme."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.frontend.conftest import sign_in
from tests.robustness.conftest import LiveApp

MiB = 1024 * 1024
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00"
    b"\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff"
    b"\x89\x99=\x1d\x00\x00\x00\x00IEND\xaeB`\x82"
)
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


IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
# True when the centre of the element is the element (or inside it): nothing covers it.
UNCOVERED = """(element) => {
  const box = element.getBoundingClientRect();
  const top = document.elementFromPoint(box.x + box.width / 2, box.y + box.height / 2);
  return top !== null && element.contains(top);
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
    laptop, phone = browser.new_context(), browser.new_context(user_agent=IPHONE)
    page, other = laptop.new_page(), phone.new_page()
    sign_in(page, site, address)
    sign_in(other, site, address)

    page.goto(f"{site.url}/account")
    page.fill("#name", "Ada Lovelace")
    page.click("#profile button:has-text('Save name')")
    page.wait_for_selector("#profile >> text=Ada Lovelace")
    assert "Your name was saved." in page.inner_text("#flashes")
    # The header follows without a reload.
    assert "Ada Lovelace" in page.inner_text("#vt-user-menu summary")

    png = (
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00"
        b"\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff"
        b"\x89\x99=\x1d\x00\x00\x00\x00IEND\xaeB`\x82"
    )
    page.set_input_files("#picture", [{"name": "me.png", "mimeType": "image/png", "buffer": png}])
    page.click("#profile button:has-text('Upload picture')")
    # (The picker shows a preview of the chosen file first; the avatar is the saved one.)
    page.wait_for_selector("#profile .vt-avatar img")
    src = page.get_attribute("#profile .vt-avatar img", "src")
    assert src and re.fullmatch(r"/blobs/[0-9a-f]{24}/content", src)
    assert page.get_attribute("#vt-user-menu summary img", "src") == src  # the header too
    assert page.evaluate("(src) => fetch(src).then(r => r.status)", src) == 200

    # Two sessions; this one is marked, the phone's is signed out from here.
    page.reload()
    rows = page.locator("#sessions li")
    assert rows.count() == 2
    assert "This device" in page.inner_text("#sessions li:has-text('This device')")
    # Named as people name them, the full string on hover.
    phone_row = page.locator("#sessions li", has_text="Mobile Safari on iOS")
    assert phone_row.locator("[title]").first.get_attribute("title") == IPHONE
    phone_row.locator("button").click()
    # (A string predicate would be eval'd in the page, which its CSP forbids.)
    expect(page.locator("#sessions li")).to_have_count(1)
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


def test_a_validation_error_goes_after_the_next_successful_save(
    browser: Any, site: LiveApp
) -> None:
    context = browser.new_context()
    page = context.new_page()
    sign_in(page, site, new_address())
    page.goto(f"{site.url}/notes")
    page.fill("#note-title", "   ")
    page.click("#note-form button[type=submit]")
    page.wait_for_selector("#note-title-error")
    page.fill("#note-title", "Fixed")
    page.click("#note-form button[type=submit]")
    page.wait_for_selector('#note-list article >> text="Fixed"')
    assert page.locator("#note-title-error").count() == 0
    assert page.get_attribute("#note-title", "aria-invalid") is None
    context.close()


def test_signing_out_says_so(browser: Any, site: LiveApp) -> None:
    context = browser.new_context()
    page = context.new_page()
    sign_in(page, site, new_address())
    page.goto(f"{site.url}/notes")
    page.click(".vt-menu summary")
    page.click(".vt-menu-panel button:has-text('Sign out')")
    page.wait_for_url(f"{site.url}/")
    assert "You are signed out." in page.inner_text("#flashes")
    context.close()


@pytest.mark.parametrize("width", [1280, 390])
def test_messages_never_cover_buttons(browser: Any, site: LiveApp, width: int) -> None:
    context = browser.new_context(viewport={"width": width, "height": 720})
    page = context.new_page()
    sign_in(page, site, new_address())
    page.goto(f"{site.url}/notes")
    for title in ("First", "Second"):
        page.fill("#note-title", title)
        page.click("#note-form button[type=submit]")
        # Quoted: an exact match. Unquoted, "First" matches the empty list's
        # "Write your first one above" before the save has come back.
        page.wait_for_selector(f'#note-list article >> text="{title}"')
    # A message is showing (the last save's), and the first card's buttons are free.
    assert page.locator("#flashes .vt-flash").count() >= 1
    delete = page.locator("#note-list article").first.locator("button[type=submit]")
    delete.scroll_into_view_if_needed()
    assert delete.evaluate(UNCOVERED)
    edit = page.locator("#note-list article").first.locator("a[hx-get]")
    assert edit.evaluate(UNCOVERED)

    page.goto(f"{site.url}/account")
    page.fill("#name", "Grace")
    page.click("#profile button:has-text('Save name')")
    page.wait_for_selector("#flashes >> text=Your name was saved.")
    sign_out = page.locator("#sessions li button").first
    sign_out.scroll_into_view_if_needed()
    assert sign_out.evaluate(UNCOVERED)
    # At 390 px the email row's badge stays on one line, inside the card.
    badge = page.locator("#providers .vt-badge").first.bounding_box()
    card = page.locator("#providers").bounding_box()
    assert badge is not None and card is not None
    assert badge["height"] < 30 and badge["x"] + badge["width"] <= card["x"] + card["width"]
    context.close()


def test_notes_speak_like_people(browser: Any, site: LiveApp) -> None:
    """Inter, "just now" with the full date on hover, "6 B", thumbnails, one-line meta at 390 px."""
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    sign_in(page, site, new_address())
    page.goto(f"{site.url}/notes")
    assert page.evaluate("getComputedStyle(document.body).fontFamily").startswith(
        '"Inter Variable"'
    )
    assert page.evaluate(
        "document.fonts.ready.then(() => document.fonts.check('16px \"Inter Variable\"'))"
    )
    page.fill("#note-title", "With files")
    page.set_input_files(
        "#note-files",
        [
            {"name": "six.txt", "mimeType": "text/plain", "buffer": b"123456"},
            {"name": "dot.png", "mimeType": "image/png", "buffer": PNG},
        ],
    )
    assert "six.txt (6 B)" in page.inner_text("[data-previews]")
    page.click("#note-form button[type=submit]")
    card = page.locator("#note-list article").first
    card.wait_for()
    when = card.locator("time")
    assert when.inner_text() == "just now"
    assert re.fullmatch(r"\w+ \d{1,2}, \d{4}, .+ UTC", when.get_attribute("title") or "")
    meta = card.locator("p.vt-muted")
    assert meta.evaluate("(p) => p.getBoundingClientRect().height") < 24  # one line
    # The thumbnail is made by a job: it shows once made.
    for _ in range(50):
        page.reload()
        if page.locator("#note-list article").first.locator("img[data-thumbnail]").count():
            break
        page.wait_for_timeout(100)
    assert page.locator("#note-list article").first.locator("img[data-thumbnail]").count() == 1
    page.locator("#note-list article h3 a").first.click()
    page.wait_for_selector("text=six.txt")
    assert "6 B · text/plain" in page.inner_text("main")
    context.close()
