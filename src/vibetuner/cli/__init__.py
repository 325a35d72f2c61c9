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
    epilog=(
        "\b\nExamples:\n"
        "  vibetuner scaffold new ../myapp --defaults   make an app\n"
        "  vibetuner run dev --port 8001                serve it, reloading on changes\n"
        "  vibetuner users promote ada@example.com      make an admin\n"
        "  vibetuner db migrate                         run data migrations\n"
        "  vibetuner COMMAND --help                     more on one command"
    ),
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
    import sys

    try:
        add_feature_commands(sys.argv[1:2])
    except typer.Exit as stop:  # bad settings or a broken app: the line is printed
        sys.exit(stop.exit_code)
    app()


def add_feature_commands(first: list[str]) -> None:
    """Add the commands of the project's features (``Feature.commands``) as
    ``vibetuner <feature name> ...``.

    Only when the command asked for is none of vibetuner's own: those never import the
    app (``vibetuner --help`` stays fast). Bad settings or a broken app end in one line.
    """
    if not first or first[0].startswith("-") or first[0] in BUILT_IN:
        return
    from vibetuner.cli.project import ProjectError, find_project

    try:
        project = find_project()
    except ProjectError:
        return  # not in a project: Typer says the command does not exist
    from vibetuner.cli.run import check_app_or_exit
    from vibetuner.web.context import app_context

    project.activate()
    loaded = check_app_or_exit(project)
    for feature in app_context(loaded).features:
        commands = feature.commands()
        if commands is not None and feature.name not in BUILT_IN:
            app.add_typer(commands, name=feature.name)


BUILT_IN = frozenset({"scaffold", "run", "db", "blobs", "css", "i18n", "jobs", "users"})


def _register() -> None:
    # Each sub-command module imports only typer and rich at module level.
    from vibetuner.cli import blobs, css, db, i18n, jobs, run, scaffold, users

    # Short help that fits the command list (Click cuts longer lines with "...").
    app.add_typer(scaffold.app, name="scaffold", short_help="Create or update a project.")
    app.add_typer(run.app, name="run", short_help="Serve the app: dev, prod or worker.")
    app.add_typer(db.app, name="db", short_help="Indexes, migrations, reset.")
    app.add_typer(blobs.app, name="blobs", short_help="Find and remove orphaned files.")
    app.add_typer(css.app, name="css", short_help="Build the stylesheet (Tailwind).")
    app.add_typer(i18n.app, name="i18n", short_help="Extract, update, compile translations.")
    app.add_typer(jobs.app, name="jobs", short_help="Failed jobs: list, retry, purge.")
    app.add_typer(users.app, name="users", short_help="Users and their roles.")


_register()
