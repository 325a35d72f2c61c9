"""The development reloader restarts on a watched file as on code, and the parts of
uvicorn it relies on behave as it expects."""

from __future__ import annotations

import inspect
import os
import time
from pathlib import Path

from uvicorn.config import Config
from uvicorn.supervisors.watchfilesreload import WatchFilesReload

from vibetuner._compat.uvicorn import FileWatchingReload, stamp


def reloader(tmp_path: Path, files: list[Path]) -> FileWatchingReload:
    code = tmp_path / "src"
    code.mkdir(exist_ok=True)
    config = Config("app:app", reload=True, reload_dirs=[str(code)])
    return FileWatchingReload(config, target=lambda sockets: None, sockets=[], files=files)


def wait_for_restart(watcher: FileWatchingReload) -> list[Path]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        changed = watcher.should_restart()
        if changed:
            return changed
    raise AssertionError("no restart within 10 s")


def test_a_changed_env_file_restarts(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    watcher = reloader(tmp_path, [env])
    assert watcher.should_restart() is None  # nothing changed: wakes up empty
    env.write_text("APP_NAME=x\n")
    assert wait_for_restart(watcher) == [env]
    # Replaced by rename, as editors save.
    new = tmp_path / ".env.new"
    new.write_text("APP_NAME=y\n")
    os.replace(new, env)
    assert wait_for_restart(watcher) == [env]
    env.unlink()
    assert wait_for_restart(watcher) == [env]
    watcher.should_exit.set()


def test_code_still_restarts_and_the_idle_watcher_wakes_quickly(tmp_path: Path) -> None:
    watcher = reloader(tmp_path, [tmp_path / ".env"])
    started = time.monotonic()
    assert watcher.should_restart() is None
    # The files are looked at every half second or so, not every 5 s.
    assert time.monotonic() - started < 3
    (tmp_path / "src" / "views.py").write_text("x = 1\n")
    assert [path.name for path in wait_for_restart(watcher)] == ["views.py"]
    (tmp_path / "src" / "notes.txt").write_text("ignored\n")  # not *.py: no restart
    assert watcher.should_restart() is None
    watcher.should_exit.set()


def test_the_uvicorn_parts_relied_on() -> None:
    assert list(inspect.signature(WatchFilesReload.__init__).parameters) == [
        "self", "config", "target", "sockets"
    ]  # fmt: skip
    source = inspect.getsource(WatchFilesReload)
    for name in (
        "self.watcher = watch(",
        "next(self.watcher)",
        "self.reload_dirs",
        "self.should_exit",
    ):
        assert name in source, name
    assert callable(Config.bind_socket)


def test_stamp_of_a_missing_file_is_none(tmp_path: Path) -> None:
    assert stamp(tmp_path / "absent") is None


async def test_a_stopping_uvicorn_server_is_seen_while_it_drains() -> None:
    """What the realtime streams rely on to end when uvicorn is told to stop."""
    import asyncio

    import uvicorn

    from vibetuner._compat.uvicorn_exit import server_exiting
    from vibetuner.testing import free_port

    async def app(scope: dict, receive: object, send: object) -> None:
        return None

    assert not server_exiting()
    config = uvicorn.Config(app, port=free_port(), lifespan="off", log_level="warning")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        assert not serving.done()
        await asyncio.sleep(0.02)
    assert not server_exiting()
    server.should_exit = True  # what its SIGTERM handler does
    assert server_exiting()
    await serving
    assert not server_exiting()  # its handlers are put back when it has stopped
