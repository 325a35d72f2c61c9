"""Every page of the framework and the scaffolded app, in light and dark mode: no serious
or critical axe-core finding, and the notes page's first load stays under 100 KB."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.frontend.conftest import sign_in
from tests.robustness.conftest import LiveApp

BLOCKING = {"serious", "critical"}
PAGE_WEIGHT_LIMIT = 100 * 1024


def violations(page: Any) -> list[str]:
    """The serious and critical axe-core findings on ``page``, one line each."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [
        f"{v['id']} ({v['impact']}): {v['help']} -- {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
        if v["impact"] in BLOCKING
    ]


@pytest.fixture(scope="module")
def pages(browser: Any, site: LiveApp) -> Iterator[dict[str, Any]]:
    """Every page to audit, reached the way a user reaches it: name -> a callable that
    opens it in the given page."""
    address = f"audit-{uuid.uuid4().hex[:8]}@example.com"
    setup = browser.new_context()
    page = setup.new_page()
    sign_in(page, site, address)
    page.goto(f"{site.url}/notes")
    page.fill("#note-title", "Audit note")
    page.fill("#note-body", "Text")
    page.click("#note-form button[type=submit]")
    page.wait_for_selector("#note-list article")
    note_path = page.get_attribute("#note-list article h3 a", "href")
    state = setup.storage_state()
    setup.close()

    def signed_out(path: str) -> Any:
        return lambda p: p.goto(site.url + path)

    def check_inbox(p: Any) -> None:
        p.goto(site.url + "/auth/login")
        p.fill("#email", "someone@example.com")
        p.click("main button[type=submit]")
        p.wait_for_selector("text=Check your inbox")

    def confirm(p: Any) -> None:
        p.goto(site.url + "/auth/login")
        p.fill("#email", "confirmer@example.com")
        p.click("main button[type=submit]")
        p.wait_for_selector("text=Check your inbox")
        (message,) = site.outbox.to("confirmer@example.com")[-1:]
        (link,) = site.outbox.links(message)
        p.goto(link)

    def login_error(p: Any) -> None:
        p.goto(site.url + "/auth/login")
        p.fill("#email", "not-an-address@invalid")
        p.click("main button[type=submit]")
        p.wait_for_selector("[role=alert]")

    def inline_edit(p: Any) -> None:
        p.goto(site.url + "/notes")
        p.click("#note-list article >> text=Edit")
        p.wait_for_selector("#note-list form")

    def delete_dialog(p: Any) -> None:
        p.goto(site.url + "/notes")
        p.click("#note-list article >> text=Delete")
        p.locator("#vt-confirm").wait_for(state="visible")

    yield {
        "state": state,
        "signed-out": {
            "home": signed_out("/"),
            "sign-in": signed_out("/auth/login"),
            "sign-in error": login_error,
            "check inbox": check_inbox,
            "confirm sign-in": confirm,
            "used link": signed_out("/auth/magic-link/not-a-real-token"),
            "not found": signed_out("/no-such-page"),
        },
        "signed-in": {
            "home": signed_out("/"),
            "notes": signed_out("/notes"),
            "note": signed_out(note_path),
            "edit page": signed_out(f"{note_path}/edit"),
            "inline edit": inline_edit,
            "delete dialog": delete_dialog,
            "account": signed_out("/account"),
            "not found": signed_out("/notes/000000000000000000000000"),
        },
    }


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_no_serious_accessibility_findings(
    browser: Any, pages: dict[str, Any], scheme: str
) -> None:
    found: dict[str, list[str]] = {}
    for who in ("signed-out", "signed-in"):
        state = pages["state"] if who == "signed-in" else None
        context = browser.new_context(color_scheme=scheme, storage_state=state)
        page = context.new_page()
        for name, open_page in pages[who].items():
            open_page(page)
            page.wait_for_timeout(250)  # colour transitions settle before contrast checks
            problems = violations(page)
            # Search engines show the meta description: every page has one.
            if not (page.get_attribute("meta[name=description]", "content") or "").strip():
                problems.append("no meta description")
            if problems:
                found[f"{who} {name}"] = problems
        context.close()
    assert found == {}


def test_the_notes_page_first_load_is_under_100_kb(
    browser: Any, pages: dict[str, Any], site: LiveApp
) -> None:
    context = browser.new_context(storage_state=pages["state"])
    page = context.new_page()
    sizes: dict[str, int] = {}

    def record(response: Any) -> None:
        request = response.request
        measured = request.sizes()
        sizes[request.url] = measured["responseBodySize"] + measured["responseHeadersSize"]

    page.on("requestfinished", lambda request: record(request.response()))
    page.goto(f"{site.url}/notes", wait_until="networkidle")
    total = sum(sizes.values())
    kinds = {url.rsplit("/", 1)[-1].split("?")[0] for url in sizes}
    assert any(name.startswith("htmx.min.") for name in kinds), kinds
    assert any(name.startswith("vibetuner.") and name.endswith(".css") for name in kinds), kinds
    assert any(name.startswith("app.") and name.endswith(".css") for name in kinds), kinds
    print(f"notes page first load: {total} bytes over {len(sizes)} requests: {sizes}")
    assert total <= PAGE_WEIGHT_LIMIT, sizes
    context.close()
