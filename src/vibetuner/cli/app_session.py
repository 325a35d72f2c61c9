"""The project's app, started for a command: its database, models and features ready."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

err = Console(stderr=True)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``message`` as one error line; the ``Exit`` to raise."""
    err.print(f"[red]Error:[/red] {escape(message)}", soft_wrap=True)
    return typer.Exit(code)


@asynccontextmanager
async def running_app(*, writes: bool = False) -> AsyncIterator[Any]:
    """The app of the project in the current directory, its lifespan running; yields it.

    Bad settings, a broken app or an unreachable database end in one line, exit 2. A
    command that ``writes`` is refused the same way when another process (the dev
    server) holds the development database, since its changes would not be kept.
    """
    from vibetuner.cli.run import check_app_or_exit, project_or_exit
    from vibetuner.errors import VibetunerError

    project = project_or_exit()
    project.activate()
    loaded = check_app_or_exit(project)
    try:
        async with loaded.router.lifespan_context(loaded):
            if writes:
                refuse_if_not_kept(loaded)
            yield loaded
    except VibetunerError as exc:
        raise fail(str(exc)) from None


def refuse_if_not_kept(app: Any) -> None:
    """Exit with one line when ``app``'s development database cannot keep a change."""
    from vibetuner.web.context import app_context

    mongo = app_context(app).mongo
    devfile = mongo.devfile if mongo is not None else None
    refusal = devfile.refusal() if devfile is not None else None
    if refusal is not None:
        raise fail(refusal)
