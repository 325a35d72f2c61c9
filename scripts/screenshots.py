"""Screenshots of the scaffolded app's pages, light and dark, for the README.

    python scripts/screenshots.py [--out docs/screenshots]

Scaffolds a fresh app with the defaults (offline), builds its stylesheet, serves it on
127.0.0.1 (in-memory database, emails written to files), signs in through the emailed
link in headless Chromium, fills in a few notes and photographs every page.
Needs Playwright and Chromium (Debian's ``chromium`` or ``CHROMIUM_PATH``).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
import zlib
from pathlib import Path


def png(width: int, height: int) -> bytes:
    """A small gradient picture, as PNG bytes."""
    rows = b"".join(
        b"\x00" + bytes(c for x in range(width) for c in (40 + x * 3 % 200, 90 + y * 2 % 150, 200))
        for y in range(height)
    )

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def chromium_path() -> str:
    found = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium")
    if not found:
        sys.exit("Chromium is not installed (apt-get install chromium, or set CHROMIUM_PATH)")
    return found


def server_env(project: Path, port: int, data: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "ENVIRONMENT": "development",
        "EMAIL_BACKEND": "file",
        "EMAIL_FILE_DIR": str(data / "outbox"),
        "DATA_DIR": str(data),
        "BASE_URL": f"http://127.0.0.1:{port}",
        # The app's package, then the caller's path (a checkout under test).
        "PYTHONPATH": os.pathsep.join(
            [str(project / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]
        ),
    }
    env.pop("MONGODB_URL", None)
    return env


def serve(project: Path, port: int, data: Path) -> subprocess.Popen[bytes]:
    env = server_env(project, port, data)
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "my_app.app:app",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=project,
        env=env,
    )
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
            return server
        except OSError:
            time.sleep(0.1)
    server.terminate()
    sys.exit("the app did not start")


def sign_in_link(outbox: Path) -> str:
    for _ in range(50):
        mails = sorted(outbox.glob("*.eml")) if outbox.exists() else []
        if mails:
            text = mails[-1].read_text().replace("=\n", "").replace("=3D", "=")
            found = re.search(r"https?://\S+/auth/magic-link/[^\s\"<]+", text)
            if found:
                return found.group(0)
        time.sleep(0.1)
    sys.exit("no sign-in email arrived")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "app"
        subprocess.run(
            ["vibetuner", "scaffold", "new", str(project), "--defaults"],
            check=True,
            capture_output=True,
        )
        subprocess.run(["vibetuner", "css", "build"], cwd=project, check=True)
        data = Path(tmp) / "data"
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = serve(project, port, data)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=chromium_path(), args=["--no-sandbox"]
                )
                page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()

                def shoot(name: str) -> None:
                    # NAME-light.png and NAME-dark.png at 1280 px, NAME-light-390.png and
                    # NAME-dark-390.png as a phone shows them.
                    for width, suffix in ((1280, ""), (390, "-390")):
                        page.set_viewport_size({"width": width, "height": 800})
                        for scheme in ("light", "dark"):
                            page.emulate_media(color_scheme=scheme)
                            page.wait_for_timeout(400)  # let colour transitions finish
                            path = out / f"{name}-{scheme}{suffix}.png"
                            page.screenshot(path=str(path), full_page=True)
                    page.set_viewport_size({"width": 1280, "height": 800})

                page.goto(base + "/")
                shoot("home")
                page.goto(base + "/auth/login")
                shoot("sign-in")
                page.fill("#email", "ada@example.com")
                page.click("main button[type=submit]")
                page.wait_for_selector("text=Check your inbox")
                shoot("check-inbox")
                page.goto(sign_in_link(data / "outbox"))
                shoot("confirm-sign-in")
                page.click("main button[type=submit]")
                page.goto(base + "/notes")
                shoot("notes-empty")
                for title, body in [
                    ("Trip to Lisbon", "Book the tram tour.\nPack the good camera."),
                    ("Groceries", "Oranges, bread, coffee"),
                    ("Ideas", "A vibetuner app for the book club"),
                ]:
                    page.fill("#note-title", title)
                    page.fill("#note-body", body)
                    if title == "Trip to Lisbon":
                        page.set_input_files(
                            "#note-files",
                            [
                                {
                                    "name": "tram.png",
                                    "mimeType": "image/png",
                                    "buffer": png(96, 64),
                                },
                                {"name": "tickets.txt", "mimeType": "text/plain", "buffer": b"2x"},
                            ],
                        )
                    page.click("#note-form button[type=submit]")
                    page.wait_for_selector(f'#note-list article >> text="{title}"')
                page.wait_for_timeout(500)  # the picture's thumbnail (a job) is made
                page.reload()
                shoot("notes")
                page.click("#note-list article >> text=Edit")
                page.wait_for_selector("#note-list form")
                shoot("note-edit-inline")
                page.goto(base + "/notes")
                page.click("text=Trip to Lisbon")
                page.wait_for_selector("text=Files")
                shoot("note")
                page.goto(base + "/account")
                shoot("account")
                page.goto(base + "/no-such-page")
                shoot("not-found")
                # The same pages in other languages (the browser asks for them).
                page.set_extra_http_headers({"Accept-Language": "es"})
                page.goto(base + "/notes")
                shoot("notes-es")
                page.goto(base + "/account")
                shoot("account-es")
                page.set_extra_http_headers({"Accept-Language": "en"})

                # The admin: a second user signs in, then Ada is promoted from the command
                # line (with the server stopped: it owns the development database's file).
                other = browser.new_context().new_page()
                other.goto(base + "/auth/login")
                other.fill("#email", "grace@example.com")
                other.click("main button[type=submit]")
                other.wait_for_selector("text=Check your inbox")
                other.goto(sign_in_link(data / "outbox"))
                other.click("main button[type=submit]")
                server.terminate()
                server.wait(timeout=10)
                subprocess.run(
                    [sys.executable, "-m", "vibetuner.cli", "users", "promote", "ada@example.com"],
                    cwd=project,
                    env=server_env(project, port, data),
                    check=True,
                    capture_output=True,
                )
                server = serve(project, port, data)
                page.goto(base + "/admin/")
                shoot("admin-home")
                page.goto(base + "/admin/users/list")
                shoot("admin-users")
                page.goto(base + "/admin/sessions/list")
                shoot("admin-sessions")
                page.goto(base + "/admin/blobs/list")
                shoot("admin-files")
                page.goto(base + "/admin/users/list?q=grace")
                for action in ("deactivate", "activate"):
                    page.locator("tbody tr input[type=checkbox]").first.check()
                    page.click("#actions-dropdown button[data-bs-toggle=dropdown]")
                    page.click(f"#actions-dropdown [data-sa-name={action}]")
                    with page.expect_navigation():
                        page.click("#actionSubmit")
                page.locator("tbody tr [data-sa-name=view_as]").first.click()
                with page.expect_navigation():
                    page.click("#actionSubmit")
                page.goto(base + "/account")
                shoot("admin-view-as")
                with page.expect_navigation():
                    page.click("[data-view-as-banner] button[type=submit]")
                page.goto(base + "/admin/audit-log/list")
                shoot("admin-audit")
                page.goto(base + "/admin/audit-log/list?q=deactivate")
                with page.expect_navigation():
                    page.locator("tbody tr a[href*='detail']").first.click()
                shoot("admin-audit-entry")
                # (Not the debug page: it shows this machine's paths.)
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=10)
    print(f"screenshots written to {out}")


if __name__ == "__main__":
    main()
