"""Static files stay inside their folders: a symlink in an app's static folder that
points outside it is not followed, over HTTP, by plain or content-hashed URL."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from vibetuner import create_app
from vibetuner.app import default_features
from vibetuner.features import Feature
from vibetuner.realtime import RealtimeFeature

# Read before the event loop runs: what the links would leak.
LEAKABLE = (b"the database password", Path("/etc/passwd").read_bytes())


class WidgetsFeature(Feature):
    """An app's own feature with a static folder of its own (served at /static too)."""

    name = "widgets"

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def static_dirs(self) -> list[Path]:
        return [self.folder]


@pytest.fixture(params=["app folder", "feature folder"])
async def static_app(
    vibetuner_settings: Any, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[httpx.AsyncClient]:
    secret_dir = tmp_path / "private"
    secret_dir.mkdir()
    (secret_dir / "secret.txt").write_text("the database password")
    static = tmp_path / "static"
    static.mkdir()
    (static / "app.css").write_text("body { color: red }")
    (static / "leak.txt").symlink_to(secret_dir / "secret.txt")
    (static / "passwd.txt").symlink_to("/etc/passwd")
    (static / "outside").symlink_to(secret_dir, target_is_directory=True)
    (static / "relative.txt").symlink_to(Path("..") / "private" / "secret.txt")
    # A link that stays inside the folder is an ordinary file of the folder.
    (static / "alias.css").symlink_to(static / "app.css")
    if request.param == "app folder":
        application = create_app(settings=vibetuner_settings, features=[], static_dirs=[static])
    else:
        # Next to the built-in features (whose scripts, realtime's included, are served
        # from the framework's folder by the same code).
        application = create_app(
            settings=vibetuner_settings,
            features=[*default_features(), RealtimeFeature(), WidgetsFeature(static)],
        )
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


@pytest.mark.parametrize(
    "path",
    [
        "/static/leak.txt",
        "/static/passwd.txt",
        "/static/outside/secret.txt",
        "/static/relative.txt",
    ],
)
async def test_a_symlink_out_of_the_static_folder_is_not_served(static_app, path):
    answer = await static_app.get(path)
    assert answer.status_code == 404
    assert b"password" not in answer.content and b"root:" not in answer.content
    # Nor under the content-hashed name the file would have.
    target = Path(path.removeprefix("/static/"))
    for body in LEAKABLE:
        digest = hashlib.sha256(body).hexdigest()[:12]
        hashed = f"/static/{target.with_name(f'{target.stem}.{digest}{target.suffix}')}"
        assert (await static_app.get(hashed)).status_code == 404


async def test_a_symlink_inside_the_static_folder_is_served(static_app):
    answer = await static_app.get("/static/alias.css")
    assert answer.status_code == 200
    assert answer.text == "body { color: red }"
    assert (await static_app.get("/static/app.css")).status_code == 200


async def test_the_framework_scripts_are_served_and_nothing_beside_them(static_app):
    for name in ("vibetuner-realtime.js", "vibetuner-passkeys.js", "htmx.min.js"):
        assert (await static_app.get(f"/static/vibetuner/{name}")).status_code == 200, name
    for path in (
        "/static/../config.py",
        "/static/vibetuner/../config.py",
        "/static/vibetuner/%2e%2e/config.py",
        "/static/%2e%2e/config.py",
        "/static/..%2fconfig.py",
        "/static/.hidden",
        "/static//etc/passwd",
        "/static/%2fetc%2fpasswd",
    ):
        answer = await static_app.get(path)
        assert answer.status_code == 404, path
        assert b"root:" not in answer.content and b"Settings" not in answer.content
