"""Two-factor codes in a real browser: turn them on from the account page, sign in with one."""

from __future__ import annotations

import time

import pyotp

from tests.auth.conftest import magic_link
from tests.auth.test_browser import launch, served_app, wait_for_mail  # noqa: F401
from vibetuner.testing import Outbox


async def sign_in_by_link(page, base_url: str, settings, email: str) -> None:
    """Ask for a link on the sign-in page and press the link page's button."""
    Outbox(settings.email_file_dir).clear()  # so the next mail is this sign-in's
    await page.goto(f"{base_url}/auth/login?next=/account")
    await page.fill("input[name=email]", email)
    await page.click("main button[type=submit]")
    await page.wait_for_selector("text=Check your inbox")
    await page.goto(magic_link(await wait_for_mail(settings)))
    async with page.expect_navigation():
        await page.click("main button[type=submit]")


async def test_turn_on_two_factor_and_sign_in_with_a_code_in_chromium(served_app):  # noqa: F811
    from playwright.async_api import async_playwright

    base_url, settings = served_app
    blocked: list[str] = []
    async with async_playwright() as playwright:
        browser = await launch(playwright)
        try:
            context = await browser.new_context()
            page = await context.new_page()
            # Anything the Content-Security-Policy stops shows up in the console.
            page.on(
                "console",
                lambda msg: (
                    blocked.append(msg.text) if "Content Security Policy" in msg.text else None
                ),
            )
            await sign_in_by_link(page, base_url, settings, "two.factor@example.com")
            assert page.url == f"{base_url}/account"

            # Set up: the section swaps in a QR code drawn on the server, and the key.
            await page.click("text=Set up two-factor codes")
            qr = page.locator("#two-factor svg.vt-qr")
            await qr.wait_for()
            box = await qr.bounding_box()
            assert box is not None and box["width"] > 100 and box["height"] > 100
            secret = (await page.inner_text("[data-two-factor-secret]")).replace(" ", "")
            totp = pyotp.TOTP(secret)
            await page.fill("#confirm-code", totp.now())
            await page.click("#two-factor button:has-text('Turn on')")
            codes = page.locator("[data-recovery-codes] li")
            await codes.first.wait_for()
            assert await codes.count() == 10
            assert await page.locator("#two-factor .vt-badge").inner_text() == "On"

            # Another browser (no cookies) signs in: the link alone is not enough.
            await context.clear_cookies()
            await sign_in_by_link(page, base_url, settings, "two.factor@example.com")
            assert page.url.startswith(f"{base_url}/auth/two-factor?next=")
            assert await page.locator("h1").inner_text() == "Two-factor code"
            me = await page.request.get(f"{base_url}/auth/me")
            assert me.status == 401

            # A wrong code is said so, in the page; the next step's code signs in.
            await page.fill("input[name=code]", "000000" if totp.now() != "000000" else "111111")
            async with page.expect_navigation():
                await page.click("main button:has-text('Continue')")
            assert await page.locator("#code-error").is_visible()
            await page.fill("input[name=code]", totp.at(time.time() + 30))
            async with page.expect_navigation():
                await page.click("main button:has-text('Continue')")
            assert page.url == f"{base_url}/account"
            me = await page.request.get(f"{base_url}/auth/me")
            assert me.status == 200 and (await me.json())["email"] == "two.factor@example.com"
        finally:
            await browser.close()
    assert blocked == []
