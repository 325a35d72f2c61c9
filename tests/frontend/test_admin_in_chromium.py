"""The admin in headless Chromium, on the scaffolded app in development.

The first admin is made with ``vibetuner users promote`` before the server starts (the
server owns the development database's file while it runs). Then: sign in, search a
user, deactivate them (their browser is signed out on its next request), activate them
again, view the app as them and come back, delete their file (the stored object goes),
and find each of those in the audit log. The pages run under the app's CSP and CSRF
check: any violation or refused request shows up as a console error, and fails.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.frontend.conftest import sign_in
from tests.robustness.conftest import LiveApp

ADMIN = "ops@example.com"
MEMBER = "mallory@example.com"
# A 1x1 PNG.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c6360f8cfc0f01f0005000201a5c0b1ff0000000049454e44ae426082"
)
SEED = f"""
import asyncio
from datetime import datetime, timezone
from vibetuner.cli.app_session import running_app
from vibetuner.models import UserModel
from vibetuner.models.mixins import utcnow

async def main():
    async with running_app():
        # As after a first sign-in by email link: the address is proven.
        await UserModel(email="{ADMIN}", email_verified_at=utcnow()).insert()

asyncio.run(main())
"""


@pytest.fixture(scope="module")
def admin_site(styled_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    """The app in development, with an admin promoted from the command line."""
    data = tmp_path_factory.mktemp("admin-site")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MONGODB_", "REDIS_"))}
    env.update(
        {
            "ENVIRONMENT": "development",
            "DATA_DIR": str(data),
            # The app's package, then the caller's path (a checkout under test).
            "PYTHONPATH": os.pathsep.join(
                [str(styled_project / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]
            ),
        }
    )

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            args, cwd=styled_project, env=env, capture_output=True, text=True, timeout=120
        )

    seeded = run(sys.executable, "-c", SEED)
    assert seeded.returncode == 0, seeded.stderr
    promoted = run(sys.executable, "-m", "vibetuner.cli", "users", "promote", ADMIN)
    assert promoted.returncode == 0, promoted.stderr
    assert f"{ADMIN} now has the role admin" in promoted.stdout

    server = LiveApp(styled_project, data, environment="development")
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def stored_objects(site: LiveApp) -> list[bytes]:
    """The bytes of every object in the app's local blob storage."""
    return [p.read_bytes() for p in (site.data_dir / "blobs").rglob("*") if p.is_file()]


def console_errors(page: Any) -> list[str]:
    """Collect the page's console errors (CSP violations, failed requests) as they come."""
    found: list[str] = []
    page.on(
        "console", lambda message: found.append(message.text) if message.type == "error" else None
    )
    return found


def run_action(page: Any, name: str) -> None:
    """Pick ``name`` from the "With selected" menu, confirm, and wait for the list to reload."""
    page.click("#actions-dropdown button[data-bs-toggle=dropdown]")
    page.click(f"#actions-dropdown [data-sa-name={name}]")
    with page.expect_navigation():
        page.click("#actionSubmit")


def test_admin_round_trip(admin_site: LiveApp, browser: Any) -> None:
    site = admin_site
    # A member with a picture file, signed in in a browser of their own.
    member_context = browser.new_context()
    member = member_context.new_page()
    sign_in(member, site, MEMBER)
    member.goto(f"{site.url}/notes")
    member.fill("#note-title", "Cat")
    member.set_input_files(
        "#note-files", [{"name": "cat.png", "mimeType": "image/png", "buffer": PNG}]
    )
    member.click("#note-form button[type=submit]")
    member.wait_for_selector("#note-list article >> text=Cat")
    assert PNG in stored_objects(site)

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors = console_errors(page)
    sign_in(page, site, ADMIN)
    page.goto(f"{site.url}/admin/")
    assert page.title().endswith("admin")

    # Search a user.
    page.goto(f"{site.url}/admin/users/list")
    page.fill("input[name=q]", "mallory")
    page.press("input[name=q]", "Enter")
    page.wait_for_url("**/admin/users/list?*q=mallory*")
    rows = page.locator("tbody tr")
    rows.first.wait_for()
    assert rows.count() == 1 and MEMBER in rows.first.inner_text()

    # Deactivate them: their session stops working at once.
    rows.first.locator("input[type=checkbox]").check()
    run_action(page, "deactivate")
    member.goto(f"{site.url}/account")
    assert "/auth/login" in member.url

    # Activate again, then view the app as them and come back.
    page.reload()
    page.locator("tbody tr").first.locator("input[type=checkbox]").check()
    run_action(page, "activate")
    page.locator(f"tbody tr:has-text('{MEMBER}') [data-sa-name=view_as]").click()
    with page.expect_navigation():
        page.click("#actionSubmit")
    banner = page.locator("[data-view-as-banner]")
    assert MEMBER in banner.inner_text()
    page.goto(f"{site.url}/notes")
    assert "Cat" in page.inner_text("#note-list")  # their notes, as they see them
    assert page.goto(f"{site.url}/admin/").status == 404  # no admin meanwhile
    assert errors == [
        "Failed to load resource: the server responded with a status of 404 (Not Found)"
    ]
    errors.clear()
    page.goto(f"{site.url}/notes")
    with page.expect_navigation():
        page.click("[data-view-as-banner] button[type=submit]")
    assert "/admin/users/detail" in page.url
    assert page.locator("[data-view-as-banner]").count() == 0

    # Delete their file: the stored object goes with the record.
    page.goto(f"{site.url}/admin/blobs/list")
    named = page.locator("td[data-column=filename]", has_text=re.compile(r"^\s*cat\.png\s*$"))
    row = page.locator("tbody tr", has=named)
    assert row.locator("img.vt-admin-preview").count() == 1
    row.locator("input[type=checkbox]").check()
    run_action(page, "delete")
    assert page.locator("tbody tr", has=named).count() == 0
    assert PNG not in stored_objects(site)

    # The audit log shows each action, by whom.
    page.goto(f"{site.url}/admin/audit-log/list")
    page.locator("tbody tr").first.wait_for()
    log = page.inner_text("tbody")
    for entry in ("deactivate", "activate", "view_as", "view_as_end", "delete"):
        assert entry in log, (entry, log)
    assert ADMIN in log and MEMBER in log

    assert errors == [], errors
    context.close()
    member_context.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_admin_pages_have_no_serious_accessibility_findings(
    admin_site: LiveApp, browser: Any, scheme: str
) -> None:
    from tests.frontend.test_accessibility_and_weight import violations

    context = browser.new_context(color_scheme=scheme, viewport={"width": 1280, "height": 800})
    page = context.new_page()
    sign_in(page, admin_site, ADMIN)
    found: dict[str, list[str]] = {}
    for path in (
        "/admin/",
        "/admin/users/list",
        "/admin/sessions/list",
        "/admin/blobs/list",
        "/admin/audit-log/list",
        "/admin/debug",
    ):
        page.goto(admin_site.url + path)
        page.wait_for_timeout(250)  # colour transitions settle before contrast checks
        problems = violations(page)
        if not (page.get_attribute("meta[name=description]", "content") or "").strip():
            problems.append("no meta description")
        if problems:
            found[path] = problems
        # Nothing is cut off at 1280 px: the list fits its card.
        overflow = page.evaluate(
            "() => [...document.querySelectorAll('.table-responsive')]"
            ".some((box) => box.scrollWidth > box.clientWidth + 1)"
        )
        assert not overflow, f"{path}: the table is wider than the page"
    assert found == {}
    context.close()
