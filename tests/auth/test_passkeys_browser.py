"""Passkeys end to end in headless Chromium, with the DevTools virtual authenticator.

The app is served by uvicorn on http://localhost:PORT (a host name: browsers refuse an
IP address as relying party, and treat localhost as a secure context), with
``BASE_URL`` the same address. The authenticator is Chromium's own (``WebAuthn``
domain): a platform authenticator with discoverable credentials that verifies the user.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from tests.auth.conftest import free_port, magic_link
from tests.auth.test_browser import launch, wait_for_mail


@pytest.fixture
def served_on_localhost(vibetuner_settings: Any) -> Iterator[tuple[str, Any]]:
    """The app on http://localhost:PORT, in its own thread: (base URL, settings)."""
    from vibetuner.testing import default_app

    port = free_port()
    base_url = f"http://localhost:{port}"
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


async def virtual_authenticator(page: Any) -> tuple[Any, str]:
    """A CTAP2 platform authenticator in ``page``'s browser: (CDP session, authenticator id)."""
    cdp = await page.context.new_cdp_session(page)
    await cdp.send("WebAuthn.enable")
    added = await cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
            }
        },
    )
    return cdp, added["authenticatorId"]


async def me(page: Any, base_url: str) -> Any:
    answer = await page.request.get(f"{base_url}/auth/me")
    return await answer.json() if answer.status == 200 else None


async def sign_in_by_email(page: Any, base_url: str, settings: Any, address: str) -> None:
    await page.goto(f"{base_url}/auth/login?next=/account")
    await page.fill("input[name=email]", address)
    await page.click("main form button[type=submit]")
    await page.wait_for_selector("text=Check your inbox")
    await page.goto(magic_link(await wait_for_mail(settings)))
    async with page.expect_navigation():
        await page.click("main button[type=submit]")


async def sign_out(page: Any) -> None:
    await page.click("#vt-user-menu summary")
    async with page.expect_navigation():
        await page.click("#vt-user-menu button[type=submit]")


def console_errors(page: Any) -> list[str]:
    """Script errors of ``page`` from now on (refused requests' 4xx lines left out)."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "console",
        lambda message: (
            errors.append(message.text)
            if message.type == "error" and "Failed to load resource" not in message.text
            else None
        ),
    )
    return errors


async def add_passkey(page: Any, name: str) -> None:
    """On the account page: type a name, press the button, wait for the page to say so."""
    await page.fill("#passkey-name", name)
    button = page.locator("form[data-passkey-register] [data-passkey-button]")
    assert await button.is_enabled()  # the script found WebAuthn and armed it
    async with page.expect_navigation():
        await button.click()
    await page.wait_for_selector(f"text=Your passkey “{name}” was added.")


async def serious_findings(page: Any) -> list[str]:
    """axe-core's serious and critical findings on ``page``, one line each."""
    from axe_playwright_python.async_playwright import Axe

    results = await Axe().run(page)
    return [
        f"{v['id']} ({v['impact']}): {v['help']} -- {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


async def credentials(cdp: Any, authenticator: str) -> list[dict[str, Any]]:
    found = await cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})
    return list(found["credentials"])


async def test_register_sign_out_sign_in_with_the_passkey_and_remove_it(served_on_localhost):
    from playwright.async_api import async_playwright

    base_url, settings = served_on_localhost
    address = "passkey.person@example.com"
    async with async_playwright() as playwright:
        browser = await launch(playwright)
        try:
            page = await (await browser.new_context()).new_page()
            errors = console_errors(page)
            cdp, authenticator = await virtual_authenticator(page)

            # Register: a name, the browser's ceremony, the list shows it.
            await sign_in_by_email(page, base_url, settings, address)
            assert page.url == f"{base_url}/account"
            await add_passkey(page, "Test laptop")
            row = page.locator("#passkeys [data-passkey]")
            assert await row.count() == 1
            assert "Test laptop" in await row.inner_text()
            assert "not used yet" in await row.inner_text()
            await page.click("#passkeys details summary")  # the rename form open too
            assert await serious_findings(page) == []
            [stored] = await credentials(cdp, authenticator)
            assert stored["isResidentCredential"] is True and stored["rpId"] == "localhost"

            # Sign out; open the sign-in page and type nothing: the email field's autofill
            # request (conditional mediation) gets the passkey from the authenticator,
            # which answers at once, and the page signs in with it.
            await sign_out(page)
            assert await me(page, base_url) is None
            async with page.expect_navigation(url=f"{base_url}/account"):
                await page.goto(f"{base_url}/auth/login?next=/account")
            await page.wait_for_selector("text=Signed in with your passkey “Test laptop”.")
            who = await me(page, base_url)
            assert who is not None and who["email"] == address
            assert "last used" in await page.locator("#passkeys [data-passkey]").inner_text()
            [used] = await credentials(cdp, authenticator)
            assert used["signCount"] >= 1

            # Remove it (the confirmation dialog first): this sign-in is recent.
            await page.click("#passkeys form[action$='/remove'] button")
            await page.click("#vt-confirm [data-confirm-yes]")
            await page.wait_for_selector("text=The passkey was removed; it no longer signs you in.")
            await page.wait_for_selector("#passkeys >> text=You have no passkeys yet.")

            # The authenticator still holds it, but it no longer opens the account: the
            # page says why, once, and stays signed out.
            await sign_out(page)
            await page.goto(f"{base_url}/auth/login")
            error = page.locator("[data-passkey-sign-in] [data-passkey-error]")
            await error.wait_for(state="visible")
            assert "not registered here" in await error.inner_text()
            assert page.url == f"{base_url}/auth/login"
            assert await serious_findings(page) == []
            assert await me(page, base_url) is None
            assert errors == []
        finally:
            await browser.close()


async def test_the_sign_in_button_opens_the_browsers_passkey_dialog(served_on_localhost):
    # The autofill request is kept from the server here (its options request fails, so
    # the page quietly leaves it), as in a browser without the autofill UI: the button's
    # own request (the browser's dialog) signs in.
    from playwright.async_api import async_playwright

    base_url, settings = served_on_localhost
    async with async_playwright() as playwright:
        browser = await launch(playwright)
        try:
            page = await (await browser.new_context()).new_page()
            errors = console_errors(page)
            await virtual_authenticator(page)
            await sign_in_by_email(page, base_url, settings, "dialog@example.com")
            await add_passkey(page, "Security key")
            await sign_out(page)

            options_requests: list[str] = []

            async def first_one_fails(route: Any) -> None:
                options_requests.append(route.request.url)
                if len(options_requests) == 1:
                    await route.abort()
                else:
                    await route.continue_()

            await page.route(f"{base_url}/auth/passkeys/options", first_one_fails)
            await page.goto(f"{base_url}/auth/login?next=/account")
            button = page.locator("[data-passkey-sign-in] [data-passkey-button]")
            await button.wait_for(state="visible")
            # The field that lists passkeys in its autofill (conditional mediation).
            assert await page.get_attribute("#email", "autocomplete") == "email webauthn"
            deadline = time.monotonic() + 10
            while not options_requests:  # the autofill request asked, and was refused
                assert time.monotonic() < deadline
                await page.wait_for_timeout(50)
            assert page.url == f"{base_url}/auth/login?next=/account"
            async with page.expect_navigation(url=f"{base_url}/account"):
                await button.click()
            await page.wait_for_selector("text=Signed in with your passkey “Security key”.")
            who = await me(page, base_url)
            assert who is not None and who["email"] == "dialog@example.com"
            assert len(options_requests) == 2
            assert errors == []
        finally:
            await browser.close()
