"""Generated projects install in a fresh virtual environment, pass their own tests and serve.

Each environment sees the packages already installed here (``--system-site-packages``, and
those of the virtual environment the tests run in, through a ``.pth`` file)
and installs this checkout and the project into itself, offline (``--no-index``).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import sysconfig
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.scaffold.conftest import REPO_ROOT, python_in, scaffold
from vibetuner.testing import csrf_token_in, free_port

VARIANTS = {
    "defaults": (),
    "s3-all-providers": (
        "project_name=Field Notes",
        "blob_storage=s3",
        "oauth_providers=google,github,oidc",
    ),
}


def clean_env(venv: Path) -> dict[str, str]:
    """The environment of a shell with ``venv`` activated and no settings leaking in."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST_", "MONGODB_", "BLOB_", "S3_", "EMAIL_", "SESSION_"))
        and k not in ("VIRTUAL_ENV", "PYTHONPATH", "ENVIRONMENT")
    }
    env["VIRTUAL_ENV"] = str(venv)
    env["PATH"] = f"{python_in(venv).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def install(project: Path, venv: Path) -> None:
    """A fresh venv with this checkout and ``project`` installed (editable) into it."""
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
        check=True,
    )
    # --system-site-packages shows the base interpreter's packages only; when the tests
    # run in a virtual environment, its packages (hatchling, the test tools) must be
    # visible too, so a .pth file adds them after the new environment's own.
    inner = subprocess.run(
        [str(python_in(venv)), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    outer = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    Path(inner, "outer-environment.pth").write_text("\n".join(sorted(outer)) + "\n")
    result = subprocess.run(
        [
            sys.executable, "-m", "pip", "--python", str(python_in(venv)), "install", "-q",
            "--no-index", "--no-build-isolation", "--no-deps",
            "-e", str(REPO_ROOT), "-e", str(project),
        ],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    # The project and vibetuner come from this venv, not from elsewhere.
    where = subprocess.run(
        [str(python_in(venv)), "-c", "import sys, vibetuner as v; print(sys.prefix, v.__file__)"],
        capture_output=True, text=True, check=True, env=clean_env(venv), cwd=venv,
    ).stdout.split()  # fmt: skip
    assert where[0] == str(venv)
    assert Path(where[1]).is_relative_to(REPO_ROOT / "src")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """Every variant scaffolded and installed: name -> (project, venv)."""
    base = tmp_path_factory.mktemp("generated")
    cache = base / "cache"
    old = os.environ.get("VIBETUNER_CACHE_DIR")
    os.environ["VIBETUNER_CACHE_DIR"] = str(cache)
    try:
        made = {}
        for name, data in VARIANTS.items():
            project = scaffold(base / name, *data)
            venv = base / f"{name}-venv"
            install(project, venv)
            made[name] = (project, venv)
        return made
    finally:
        if old is None:
            os.environ.pop("VIBETUNER_CACHE_DIR", None)
        else:
            os.environ["VIBETUNER_CACHE_DIR"] = old


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_generated_project_tests_pass(installed, variant):
    project, venv = installed[variant]
    result = subprocess.run(
        [str(python_in(venv)), "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider"],
        cwd=project, env=clean_env(venv), capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "failed" not in result.stdout
    # Only what needs a real MongoDB may skip, and only when there is none.
    skips = [line for line in result.stdout.splitlines() if line.startswith("SKIPPED")]
    if os.environ.get("TEST_MONGODB_URL"):
        assert skips == []
    else:
        assert all("TEST_MONGODB_URL" in line for line in skips), skips


class Server:
    """A ``vibetuner run`` process in its own process group, its output collected."""

    def __init__(self, project: Path, venv: Path, *args: str) -> None:
        self.process = subprocess.Popen(
            [str(python_in(venv).parent / "vibetuner"), "run", *args],
            cwd=project,
            env=clean_env(venv),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for_health(self, url: str, timeout: float = 60) -> httpx.Response:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the server exited with {self.process.returncode}:\n{self.output}")
            try:
                return httpx.get(url, timeout=2)
            except httpx.TransportError:
                time.sleep(0.2)
        pytest.fail(f"no answer from {url} within {timeout} s")

    def stop(self) -> str:
        """Stop the server and its reloader or workers (the whole group); return the output."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.reader.join(timeout=5)
        return self.output


def test_run_dev_quick_start(installed):
    """What the Quick start promises: sign in with the printed link, then keep a file in a note."""
    project, venv = installed["defaults"]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = Server(project, venv, "dev", "--port", str(port))
    try:
        health = server.wait_for_health(f"{base}/health")
        assert health.status_code == 200
        assert health.json() == {
            "status": "ok",
            "database": "ok",
            "backend": "memory",
            "jobs": "ok",
            "jobs_backend": "in-process",
            # The scaffold's features with a readiness check of their own.
            "checks": {"cache": "ok", "jobs": "ok", "realtime": "ok"},
        }

        with httpx.Client(base_url=base, timeout=10) as browser:
            home = browser.get("/")
            assert home.status_code == 200 and 'href="/auth/login"' in home.text
            login = browser.get("/auth/login")
            assert login.status_code == 200
            # As the login form does: the page's CSRF token goes with the form.
            sent = browser.post(
                "/auth/magic-link",
                data={"email": "ada@example.com", "csrf_token": csrf_token_in(login.text)},
                headers={"accept": "text/html"},
            )
            assert sent.status_code == 200

            link = None
            deadline = time.monotonic() + 10
            while link is None and time.monotonic() < deadline:
                found = re.findall(r"(http://\S+/auth/magic-link/\S+)", server.output)
                link = found[-1] if found else None
                time.sleep(0.1)
            assert link, f"no sign-in link printed:\n{server.output}"
            # Without BASE_URL the link follows the port the dev server listens on.
            assert link.startswith(f"{base}/auth/magic-link/"), link
            # The link asks first ("Sign in as ...?"); its button signs in.
            confirm = browser.get(link)
            assert confirm.status_code == 200 and "ada@example.com" in confirm.text
            signed_in = browser.post(confirm.url, data={"csrf_token": csrf_token_in(confirm.text)})
            assert signed_in.status_code in (302, 303)

            notes = browser.get("/notes")
            created = browser.post(
                "/notes",
                data={"csrf_token": csrf_token_in(notes.text), "title": "First note"},
                files={"files": ("hello.txt", b"hello from the quick start", "text/plain")},
            )
            assert created.status_code == 303
            listing = browser.get(created.headers["location"])
            [note_url] = set(re.findall(r'href="(/notes/[0-9a-f]{24})"', listing.text))
            page = browser.get(note_url)
            [content_url] = re.findall(r'href="(/blobs/[^"]+/content)"', page.text)
            assert browser.get(content_url).content == b"hello from the quick start"

            # Saving a source file reloads the app: still signed in, the note and its file
            # still there (the development database and session key live in data/).
            pages = next(project.glob("src/*/pages.py"))
            pages.write_text(pages.read_text() + "\n# touched\n")
            deadline = time.monotonic() + 30
            while server.output.count("Application startup complete") < 2:
                assert time.monotonic() < deadline, f"no reload:\n{server.output}"
                time.sleep(0.2)
            server.wait_for_health(f"{base}/health")
            assert_still_there(browser, content_url)
    finally:
        output = server.stop()
    assert "Will watch for changes" in output

    # Stopped and started again: the same.
    server = Server(project, venv, "dev", "--port", str(port))
    try:
        server.wait_for_health(f"{base}/health")
        with httpx.Client(base_url=base, timeout=10, cookies=browser.cookies) as again:
            assert_still_there(again, content_url)
    finally:
        server.stop()


def assert_still_there(browser: httpx.Client, content_url: str) -> None:
    """Signed in as ada, with the first note and its attachment."""
    me = browser.get("/auth/me", headers={"accept": "application/json"})
    assert me.status_code == 200 and me.json()["email"] == "ada@example.com"
    assert "First note" in browser.get("/notes").text
    assert browser.get(content_url).content == b"hello from the quick start"


def test_run_prod_serves_health_with_workers(installed):
    project, venv = installed["s3-all-providers"]
    port = free_port()
    args = ("prod", "--host", "127.0.0.1", "--port", str(port), "--workers", "2")
    server = Server(project, venv, *args)
    try:
        health = server.wait_for_health(f"http://127.0.0.1:{port}/health")
        assert health.status_code == 200
    finally:
        output = server.stop()
    assert output.count("Started server process") >= 2, output


def test_run_dev_moves_to_the_next_free_port_when_8000_is_taken(installed):
    """The Quick start's `vibetuner run dev`, with another app already on port 8000."""
    import socket

    project, venv = installed["defaults"]
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        blocker.bind(("127.0.0.1", 8000))
        blocker.listen()
    except OSError:
        blocker.close()
        blocker = None  # something else holds 8000 already: the same situation
    server = Server(project, venv, "dev")
    try:
        deadline = time.monotonic() + 60
        found = None
        while found is None and time.monotonic() < deadline:
            found = re.search(r"Port 8000 is in use: serving on (\d+) instead", server.output)
            if server.process.poll() is not None:
                pytest.fail(f"the server exited:\n{server.output}")
            time.sleep(0.1)
        assert found, server.output
        port = int(found.group(1))
        assert server.wait_for_health(f"http://127.0.0.1:{port}/health").status_code == 200
    finally:
        server.stop()
        if blocker is not None:
            blocker.close()


def test_run_dev_restarts_when_env_changes(installed):
    """Settings are read at startup: editing .env restarts the dev server, as code does."""
    project, venv = installed["defaults"]
    env_file = project / ".env"
    assert not env_file.exists()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = Server(project, venv, "dev", "--port", str(port))
    try:
        assert server.wait_for_health(f"{base}/health").status_code == 200
        assert "Renamed by .env" not in httpx.get(f"{base}/", timeout=5).text
        env_file.write_text('APP_NAME="Renamed by .env"\n')
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline:
            try:
                if "Renamed by .env" in httpx.get(f"{base}/", timeout=2).text:
                    break
            except httpx.TransportError:
                pass  # restarting
            time.sleep(0.3)
        else:
            pytest.fail(f"the app name did not change:\n{server.output}")
        # uvicorn says which file made it restart.
        assert re.search(r"changes in .*\.env", server.output.split("and .env)")[-1]), server.output
    finally:
        env_file.unlink(missing_ok=True)
        server.stop()
