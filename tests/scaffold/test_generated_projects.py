"""Generated projects install in a fresh virtual environment, pass their own tests and serve.

Each environment sees the packages already installed here (``--system-site-packages``)
and installs this checkout and the project into itself, offline (``--no-index``).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.scaffold.conftest import REPO_ROOT, python_in, scaffold

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
        [str(python_in(venv)), "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=project, env=clean_env(venv), capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "failed" not in result.stdout
    assert "skipped" not in result.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_health(url: str, process: subprocess.Popen, timeout: float = 60) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server exited with {process.returncode}")
        try:
            return httpx.get(url, timeout=2)
        except httpx.TransportError:
            time.sleep(0.2)
    pytest.fail(f"no answer from {url} within {timeout} s")


def serve(project: Path, venv: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [str(python_in(venv).parent / "vibetuner"), "run", *args],
        cwd=project,
        env=clean_env(venv),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def stop(process: subprocess.Popen) -> str:
    """Stop the server and its reloader or workers (one process group); return its output."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
    try:
        output, _ = process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
    return output


def test_run_dev_serves_health(installed):
    project, venv = installed["defaults"]
    port = free_port()
    process = serve(project, venv, "dev", "--port", str(port))
    try:
        health = wait_for_health(f"http://127.0.0.1:{port}/health", process)
        assert health.status_code == 200
        assert health.json() == {"status": "ok", "database": "ok", "backend": "memory"}
        home = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
        assert home.status_code == 200 and 'href="/auth/login"' in home.text
        login = httpx.get(f"http://127.0.0.1:{port}/auth/login", timeout=5)
        assert login.status_code == 200
    finally:
        output = stop(process)
    assert "Will watch for changes" in output or "reload" in output.lower()


def test_run_prod_serves_health_with_workers(installed):
    project, venv = installed["s3-all-providers"]
    port = free_port()
    process = serve(
        project, venv, "prod", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"
    )
    try:
        health = wait_for_health(f"http://127.0.0.1:{port}/health", process)
        assert health.status_code == 200
    finally:
        output = stop(process)
    assert output.count("Started server process") >= 2, output
