"""``vibetuner i18n``: the app's translation catalogs, with Babel.

The project names its catalog folder in ``[tool.vibetuner] locales`` (for example
``src/my_app/locales``); strings are extracted from the package around it -- ``_()``,
``gettext``, ``ngettext``, ``N_`` and ``lazy_gettext`` in Python, ``_()`` and
``{% trans %}`` in templates -- into ``messages.pot``, in the ``messages`` domain that
``create_app(locale_dirs=[...])`` loads.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from vibetuner.cli.project import Project, ProjectError, find_project

app = typer.Typer(
    help="Translate the app: extract, init, update and compile catalogs.", no_args_is_help=True
)
err = Console(stderr=True)

DOMAIN = "messages"
KEYWORDS = ["-k", "N_", "-k", "lazy_gettext"]
MAPPING = """[python: **.py]

[jinja2: **/templates/**.html]

[jinja2: **/templates/**.txt]
"""


def _project() -> tuple[Project, Path]:
    try:
        project = find_project()
    except ProjectError as exc:
        err.print(f"[red]Error:[/red] {exc}")
        raise typer.Exit(2) from None
    if project.locales is None:
        err.print(
            "[red]Error:[/red] this project has no catalog folder; add one to its "
            '[tool.vibetuner] table in pyproject.toml, such as locales = "src/my_app/locales"'
        )
        raise typer.Exit(2)
    return project, project.locales


def _babel(*args: str) -> None:
    from babel.messages.frontend import CommandLineInterface

    try:
        CommandLineInterface().run(["pybabel", "--quiet", *args])  # type: ignore[no-untyped-call]
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise typer.Exit(1) from None
    except Exception as exc:  # Babel reports bad input as exceptions (a broken .po ...)
        err.print(f"[red]Error:[/red] {exc}")
        raise typer.Exit(1) from None


@app.command(short_help="Collect the strings to translate.")
def extract() -> None:
    """Collect the translatable strings of the package into ``messages.pot``."""
    _project_root, locales = _project()
    locales.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", suffix=".cfg", delete=False) as mapping:
        mapping.write(MAPPING)
    try:
        _babel(
            "extract",
            "-F",
            mapping.name,
            *KEYWORDS,
            "--sort-output",
            "--no-location",
            "-o",
            str(locales / f"{DOMAIN}.pot"),
            str(locales.parent),
        )
    finally:
        Path(mapping.name).unlink(missing_ok=True)
    err.print(f"Extracted the strings into {locales / f'{DOMAIN}.pot'}")


@app.command()
def init(
    language: Annotated[str, typer.Argument(help="A locale code, such as es or pt_BR.")],
) -> None:
    """Start the catalog of a new language from ``messages.pot``."""
    from vibetuner.config import _locale_code

    _project_root, locales = _project()
    try:
        code = _locale_code(language)
    except ValueError as exc:
        err.print(f"[red]Error:[/red] {exc}")
        raise typer.Exit(2) from None
    template = _template(locales)
    if (locales / code / "LC_MESSAGES" / f"{DOMAIN}.po").exists():
        err.print(f"[red]Error:[/red] {code} already has a catalog; use `vibetuner i18n update`")
        raise typer.Exit(2)
    _babel("init", "-i", str(template), "-d", str(locales), "-D", DOMAIN, "-l", code)
    err.print(f"Started {locales / code / 'LC_MESSAGES' / f'{DOMAIN}.po'}")


@app.command()
def update() -> None:
    """Bring every language's catalog up to date with ``messages.pot``."""
    _project_root, locales = _project()
    _babel("update", "-i", str(_template(locales)), "-d", str(locales), "-D", DOMAIN)
    err.print("Updated the catalogs; translate the new entries, then run `vibetuner i18n compile`")


@app.command(name="compile")
def compile_catalogs() -> None:
    """Compile the catalogs (``.po`` -> ``.mo``) that the app loads."""
    from vibetuner.i18n import catalog_problems

    _project_root, locales = _project()
    catalogs = sorted(locales.glob(f"*/LC_MESSAGES/{DOMAIN}.po"))
    if not catalogs:
        err.print("[red]Error:[/red] no catalogs yet; start one with `vibetuner i18n init LANG`")
        raise typer.Exit(2)
    _babel("compile", "-d", str(locales), "-D", DOMAIN)
    for path in catalogs:
        problems = catalog_problems(path)
        state = f"{len(problems)} to translate" if problems else "complete"
        err.print(f"Compiled {path.parent.parent.name}: {state}")


def _template(locales: Path) -> Path:
    template = locales / f"{DOMAIN}.pot"
    if not template.is_file():
        err.print("[red]Error:[/red] no messages.pot yet; run `vibetuner i18n extract` first")
        raise typer.Exit(2)
    return template
