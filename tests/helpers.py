"""Small helpers shared by tests that start and stop servers."""

from __future__ import annotations

import asyncio
import subprocess
from typing import Any


def stop_process(process: subprocess.Popen, timeout: float = 20.0) -> None:
    """Terminate ``process`` and wait for it; kill it if it does not stop in ``timeout``."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def wait_until(check: Any, seconds: float = 30.0) -> None:
    """Poll the async ``check`` until it is true; fail after ``seconds``."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {seconds} s waiting for {check.__name__}")
        await asyncio.sleep(0.02)


class JsonLogs:
    """The JSON lines vibetuner's log handler wrote while ``capture_json_logs`` was open."""

    def __init__(self) -> None:
        import io

        self.stream = io.StringIO()

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def entries(self) -> list[dict[str, Any]]:
        import json

        return [json.loads(line) for line in self.text.splitlines() if line.startswith("{")]


def capture_json_logs(level: int = 20) -> Any:
    """A context manager: the root logger also writes to a ``JsonLogs``, through the same
    filter and formatter ``configure_logging`` installs for ``LOG_FORMAT=json``."""
    import logging
    from contextlib import contextmanager

    from vibetuner.logs import ContextFilter, JsonFormatter

    @contextmanager
    def capture() -> Any:
        logs = JsonLogs()
        handler = logging.StreamHandler(logs.stream)
        handler.addFilter(ContextFilter())
        handler.setFormatter(JsonFormatter())
        root = logging.getLogger()
        old_level = root.level
        root.addHandler(handler)
        root.setLevel(level)
        try:
            yield logs
        finally:
            root.removeHandler(handler)
            root.setLevel(old_level)

    return capture()
