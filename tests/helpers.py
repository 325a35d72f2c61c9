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
