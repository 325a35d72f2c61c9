"""/docs and /redoc render in a browser with no network: every asset comes from the app."""

from __future__ import annotations

import pytest

from tests.auth.test_browser import launch, served_app  # noqa: F401

pytestmark = pytest.mark.usefixtures("served_app")


@pytest.mark.parametrize(("path", "ready"), [("/docs", ".opblock"), ("/redoc", "[role=menuitem]")])
async def test_api_docs_render_offline(served_app, path, ready):  # noqa: F811
    from playwright.async_api import async_playwright

    base_url, _ = served_app
    async with async_playwright() as playwright:
        browser = await launch(playwright)
        try:
            context = await browser.new_context()
            page = await context.new_page()
            problems: list[str] = []
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            outside: list[str] = []

            async def only_this_app(route) -> None:
                if route.request.url.startswith(base_url):
                    await route.continue_()
                else:  # anything from elsewhere (a CDN) would fail offline
                    outside.append(route.request.url)
                    await route.abort()

            await page.route("**/*", only_this_app)
            await page.goto(f"{base_url}{path}")
            await page.wait_for_selector(ready, timeout=15_000)
            assert "/auth/login" in await page.content()  # the API's operations are shown
            assert outside == []
            # ReDoc's decorative "by Redocly" badge points at its CDN: refused, as offline.
            csp = [
                p for p in problems if "Content Security Policy" in p and "cdn.redoc.ly" not in p
            ]
            assert not csp, "\n".join(csp)
        finally:
            await browser.close()
