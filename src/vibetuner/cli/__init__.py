"""The ``vibetuner`` command line.

Sub-command modules import only typer and rich at module level; anything heavy
(copier, uvicorn, beanie, aioboto3) is imported inside the command that needs it, so
``vibetuner --help`` stays fast.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="vibetuner",
    help="vibetuner: scaffold, run and manage FastAPI + MongoDB apps.",
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help here: Typer's rich help formatter costs about 0.15 s to import, more than
    # the rest of `vibetuner --help`. Sub-commands keep rich help.
    rich_markup_mode=None,
)


def _show_version(value: bool) -> None:
    if value:
        from vibetuner import __version__

        typer.echo(f"vibetuner {__version__}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def _root(
    context: typer.Context,
    version: bool = typer.Option(
        False, "--version", callback=_show_version, is_eager=True, help="Print the version."
    ),
) -> None:
    # Bare `vibetuner` prints the help and succeeds: it is a question, not a mistake.
    if context.invoked_subcommand is None:
        typer.echo(context.get_help())
        raise typer.Exit()


def main() -> None:
    """Entry point of the ``vibetuner`` script."""
    app()


def _register() -> None:
    # Each sub-command module imports only typer and rich at module level.
    from vibetuner.cli import blobs, css, db, i18n, jobs, run, scaffold, users

    app.add_typer(scaffold.app, name="scaffold")
    app.add_typer(run.app, name="run")
    app.add_typer(db.app, name="db")
    app.add_typer(blobs.app, name="blobs")
    app.add_typer(css.app, name="css")
    app.add_typer(i18n.app, name="i18n")
    app.add_typer(jobs.app, name="jobs")
    app.add_typer(users.app, name="users")


_register()
