"""A signed-in person using the scaffolded notes app on a filled development database.

The app ``vibetuner scaffold new --defaults`` makes runs in process on the in-memory
database (as ``vibetuner run dev`` does without ``MONGODB_URL``), holding ``--users``
users, each with a server-side session and one note. Over HTTP (httpx's ASGI client),
one of them then loads the notes page (``GET /notes``), one note (``GET /notes/{id}``)
and ``GET /auth/me``; each is timed ``--requests`` times and the median is printed.

It has no target: it measures what a change to the development database costs a real
workflow (run it before and after). Usage: ``python bench/dev_workflow.py [--users N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PACKAGE = "benchnotes"


def scaffold(directory: Path) -> None:
    """The notes app, scaffolded with its defaults into ``directory``."""
    command = [
        sys.executable,
        "-c",
        "from vibetuner.cli import main; main()",
        "scaffold",
        "new",
        str(directory),
        "--defaults",
        "--data",
        f"project_name={PACKAGE}",
        "--data",
        f"package_name={PACKAGE}",
    ]
    subprocess.run(command, check=True, capture_output=True)
    sys.path.insert(0, str(directory / "src"))


async def measure(users: int, requests: int, data_dir: Path, skip_detail: bool) -> dict[str, float]:
    """Median milliseconds of each request of the workflow."""
    import importlib

    import httpx

    from vibetuner.config import Settings
    from vibetuner.models import UserModel
    from vibetuner.testing import set_session_cookie, signed_in_cookie

    app_module = importlib.import_module(f"{PACKAGE}.app")
    models = importlib.import_module(f"{PACKAGE}.models")
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        environment="test",
        data_dir=data_dir / "data",
        blob_dir=data_dir / "blobs",
        email_backend="file",
        email_file_dir=data_dir / "outbox",
        session_key="bench-" + "k" * 60,
        base_url="http://testserver",
    )
    app = app_module.build_app(settings)
    async with app.router.lifespan_context(app):
        person = None
        for number in range(users):
            person = UserModel(email=f"user{number}@example.com", name=f"User {number}")
            await person.insert()
            await signed_in_cookie(settings, person)  # everyone has a session
            note = models.Note(title=f"Note {number}", body="text", owner=person)
            await note.insert()
        assert person is not None
        cookie = await signed_in_cookie(settings, person)
        transport = httpx.ASGITransport(app=app)
        timings: dict[str, list[float]] = {}
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            set_session_cookie(http, settings, cookie)
            paths = {"GET /notes": "/notes", "GET /notes/{id}": f"/notes/{note.id}"}
            paths["GET /auth/me"] = "/auth/me"
            if skip_detail:
                del paths["GET /notes/{id}"]
            for _ in range(requests):
                for name, path in paths.items():
                    start = time.perf_counter()
                    response = await http.get(path, headers={"Accept": "text/html"})
                    timings.setdefault(name, []).append(time.perf_counter() - start)
                    assert response.status_code == 200, (path, response.status_code)
    return {name: statistics.median(values) * 1000 for name, values in timings.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument(
        "--skip-detail", action="store_true", help="leave out GET /notes/{id} (fetches links)"
    )
    args = parser.parse_args()
    os.environ.pop("MONGODB_URL", None)
    with tempfile.TemporaryDirectory(prefix="vibetuner-bench-") as work:
        scaffold(Path(work) / "app")
        start = time.perf_counter()
        figures = asyncio.run(measure(args.users, args.requests, Path(work), args.skip_detail))
        total = time.perf_counter() - start
    for name, milliseconds in figures.items():
        print(f"{name}: {milliseconds:.2f} ms (median of {args.requests})")
    print(f"seeding {args.users} users, sessions and notes, then the requests: {total:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
