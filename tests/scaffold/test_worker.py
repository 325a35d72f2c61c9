"""The scaffolded app's job worker: ``vibetuner run worker`` builds the context that
``worker.py`` names (no web app), starts it against Redis, and stops cleanly."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.jobs.redis_server import RedisServer
from tests.scaffold.conftest import REPO_ROOT, scaffold

READY = "running jobs"


def test_the_scaffolded_worker_starts_runs_and_stops(tmp_path: Path) -> None:
    project = scaffold(tmp_path / "myapp")
    redis = RedisServer(tmp_path)
    redis.start()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MONGODB_", "REDIS_"))}
    env.update(
        {
            "PYTHONPATH": os.pathsep.join([str(project / "src"), str(REPO_ROOT / "src")]),
            "REDIS_URL": redis.url,
            "SESSION_KEY": secrets.token_urlsafe(48),
            "DATA_DIR": str(tmp_path / "data"),
            "JOBS_SHUTDOWN_GRACE": "2",
        }
    )
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "vibetuner.cli", "run", "worker"],
            cwd=project,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while READY not in log.read_text() and worker.poll() is None:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        # Started, and still running a moment later: its features' lifespans all entered.
        time.sleep(2)
        assert worker.poll() is None, log.read_text()
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0, log.read_text()
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        redis.stop()
    output = log.read_text()
    assert "my_app.worker:build_context" in output
    assert "Error" not in output and "Traceback" not in output, output
