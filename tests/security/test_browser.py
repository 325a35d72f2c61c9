"""CSRF and CSP in a real browser (headless Chromium): the site's own form and script
requests go through, a page on another origin cannot post for a signed-in visitor."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.auth.conftest import magic_link
from tests.auth.test_browser import launch, served_app, wait_for_mail  # noqa: F401
from vibetuner.testing import free_port


@pytest.fixture
def attacker(served_app) -> Iterator[str]:  # noqa: F811
    """A page on another origin (another port: the same site, as a sibling subdomain
    is) whose form posts to the app's sign-out as soon as it loads."""
    base_url, _ = served_app
    page = f"""<!doctype html><html><body>
      <form id="f" method="post" action="{base_url}/auth/logout">
        <input type="hidden" name="csrf_token" value="guessed">
      </form>
      <script>document.getElementById("f").submit();</script>
    </body></html>""".encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args: object) -> None:
            pass

    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.shutdown()
        thread.join(timeout=5)


async def test_forms_and_scripts_of_the_site_pass_and_another_origin_is_refused(
    served_app,  # noqa: F811
    attacker,
):
    from playwright.async_api import async_playwright

    base_url, settings = served_app
    async with async_playwright() as playwright:
        browser = await launch(playwright)
        try:
            context = await browser.new_context()
            page = await context.new_page()
            violations: list[str] = []
            page.on(
                "console",
                lambda m: (
                    violations.append(m.text) if "Content Security Policy" in m.text else None
                ),
            )
            # The sign-in form posts with its token (the session cookie is already set).
            await page.goto(f"{base_url}/auth/login?next=/auth/me")
            # The stylesheet (a file, allowed by style-src 'self') applies.
            card = "getComputedStyle(document.querySelector('.vt-card')).borderTopLeftRadius"
            assert await page.evaluate(card) != "0px"
            await page.fill("input[name=email]", "csrf.browser@example.com")
            await page.click("main button[type=submit]")
            await page.wait_for_selector("text=Check your inbox")
            response = await page.goto(magic_link(await wait_for_mail(settings)))
            assert response is not None and response.status == 200
            # The link's page asks first; its button posts with the page's token.
            async with page.expect_navigation():
                await page.click("main button[type=submit]")
            assert json.loads(await page.inner_text("body"))["email"] == "csrf.browser@example.com"

            # Another origin's page posts the sign-out form: refused, still signed in.
            attack = await context.new_page()
            async with attack.expect_response(f"{base_url}/auth/logout") as answer:
                await attack.goto(attacker)
            assert (await answer.value).status == 403
            await page.goto(f"{base_url}/auth/me")
            assert json.loads(await page.inner_text("body"))["email"] == "csrf.browser@example.com"

            # The site's own script: fetch() gets the X-CSRF-Token header added.
            await page.goto(f"{base_url}/auth/login")
            status = await page.evaluate(
                "fetch('/auth/logout', {method: 'POST', headers: {Accept: 'application/json'}})"
                ".then(r => r.status)"
            )
            assert status == 200
            await page.goto(f"{base_url}/auth/me")
            deadline = time.monotonic() + 5
            while "Not signed in" not in await page.content() and time.monotonic() < deadline:
                await page.reload()
            assert "Not signed in" in await page.content()
            assert violations == []
        finally:
            await browser.close()
