"""``vibetuner scaffold new|update``: create a project from the template, or update one.

copier is imported inside the commands: it is slow to import and only these need it.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel

app = typer.Typer(
    help="Create a vibetuner project, or update one to the current template.", no_args_is_help=True
)
out = Console()
err = Console(stderr=True)

ANSWERS_FILE = ".copier-answers.yml"
BAD_INPUT = 2


def fail(message: str, code: int = BAD_INPUT) -> typer.Exit:
    """Print ``message`` as an error; the caller raises the returned ``Exit``."""
    err.print(f"[red]Error:[/red] {escape(message)}", soft_wrap=True)
    return typer.Exit(code)


# The questions of the template's copier.yml, for --help (a test keeps them in step).
ANSWER_KEYS = (
    "project_name",
    "package_name",
    "description",
    "author_name",
    "author_email",
    "blob_storage",
    "jobs",
    "oauth_providers",
    "python_version",
)


def parse_data(items: list[str], questions: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Turn ``key=value`` items into copier data.

    Unknown keys and items without ``=`` are refused. A multiple-choice question takes
    comma-separated values (``oauth_providers=google,github``; ``none`` for no choice).
    """
    data: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"--data takes key=value, got {item!r}")
        if key not in questions:
            raise ValueError(f"unknown question {key!r}; the questions are: {', '.join(questions)}")
        if questions[key].get("multiselect"):
            # Also accept the YAML list form copier itself takes: [google, github].
            parts = [p.strip() for p in value.strip().strip("[]").split(",") if p.strip()]
            data[key] = [] if parts in ([], ["none"]) else parts
        else:
            data[key] = value
    return data


def resolve_template(template: Path | None) -> tuple[str, str | None]:
    """The copier source and ref to render: a git template as is, a plain one through the cache."""
    from vibetuner.cli.template import (
        TemplateError,
        has_git,
        installed_template,
        is_git_root,
        versioned,
    )

    source = (template or installed_template()).resolve()
    if not (source / "copier.yml").is_file():
        raise fail(f"{source} is not a project template (it has no copier.yml)")
    if is_git_root(source):
        return str(source), None
    if not has_git():
        err.print(
            "[yellow]git is not installed:[/yellow] the project is created, but "
            "`vibetuner scaffold update` will not be able to update it."
        )
        return str(source), None
    try:
        repo, tag = versioned(source)
    except TemplateError as exc:
        raise fail(f"cannot prepare the template: {exc}", 1) from None
    return str(repo), tag


@app.command()
def new(
    directory: Annotated[Path, typer.Argument(help="Where to create the project.")],
    defaults: Annotated[
        bool,
        typer.Option("--defaults", help="Ask nothing; use defaults for what --data does not give."),
    ] = False,
    data: Annotated[
        list[str] | None,
        typer.Option(
            "--data",
            "-d",
            help=(
                "An answer, as key=value (repeatable). Keys: "
                + ", ".join(ANSWER_KEYS)
                + " (a comma-separated list for oauth_providers)."
            ),
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Write into a non-empty directory, overwriting files.")
    ] = False,
    template: Annotated[
        Path | None,
        typer.Option(
            help="Render this template directory instead of vibetuner's (template development).",
            hidden=True,
        ),
    ] = None,
) -> None:
    """Create a new project in DIRECTORY."""
    from vibetuner.cli.template import installed_template, questions

    target = directory.expanduser().resolve()
    if target.exists() and not target.is_dir():
        raise fail(f"{target} exists and is not a directory")
    if target.is_dir() and any(target.iterdir()) and not force:
        raise fail(f"{target} is not empty; pick a new directory or pass --force to write into it")
    source_dir = (template or installed_template()).resolve()
    try:
        answers = parse_data(data or [], questions(source_dir))
    except (ValueError, OSError) as exc:
        raise fail(str(exc)) from None
    src_path, ref = resolve_template(template)
    from vibetuner.cli.requirement import framework_checkout, framework_pin

    answers.setdefault("vibetuner_pin", framework_pin())
    checkout = framework_checkout()
    answers.setdefault("vibetuner_checkout", str(checkout) if checkout else "")

    import copier
    from copier.errors import CopierError, InteractiveSessionError

    try:
        worker = copier.run_copy(
            src_path,
            target,
            data=answers,
            vcs_ref=ref,
            defaults=defaults,
            overwrite=force,
            quiet=True,
            unsafe=False,
        )
    except InteractiveSessionError:
        raise fail(
            "no terminal to ask the questions in; pass --defaults and/or --data key=value"
        ) from None
    except (ValueError, CopierError) as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        raise fail("interrupted", 130) from None
    print_next_steps(target, worker.answers.combined)


def print_next_steps(target: Path, answers: Any) -> None:
    """Tell the user how to run the new project."""
    try:
        shown = target.relative_to(Path.cwd())
    except ValueError:
        shown = target
    package = answers.get("package_name", "")
    checkout = answers.get("vibetuner_checkout", "")
    if checkout:
        # Made from a checkout installed editable: the project pins its version, so the
        # environment that has it keeps it (edits to the checkout take effect); a new
        # environment installs the checkout first.
        install = [
            'pip install -e ".\\[dev]"   [dim]# in this environment, which has vibetuner[/dim]',
            "[dim]or in a new one:[/dim] python -m venv .venv && . .venv/bin/activate",
            f'pip install -e {checkout} -e ".\\[dev]"',
        ]
    else:
        install = ["python -m venv .venv && . .venv/bin/activate", 'pip install -e ".\\[dev]"']
    steps = "\n".join(
        [
            f"[bold]cd {shown}[/bold]",
            *install,
            "git init && git add -A && git commit -m 'New project'"
            "   [dim]# scaffold update needs git[/dim]",
            "[bold]just local[/bold]   [dim]# or: vibetuner run dev[/dim]",
            "",
            "Then open [cyan]http://127.0.0.1:8000[/cyan]; "
            "sign in with the link printed in the console.",
            "[dim]just test · just lint · just dev (MongoDB in Docker) · "
            "settings in .env.example[/dim]",
        ]
    )
    out.print(
        Panel(steps, title=f"Created {package} in {shown}", border_style="green", expand=False)
    )


def git_lines(cwd: Path, *args: str) -> list[str] | None:
    """Output lines of a git command, or None when it fails (not a repository ...)."""
    try:
        result = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, check=False
        )
    except OSError:
        return None
    return result.stdout.splitlines() if result.returncode == 0 else None


def check_clean_repo(project: Path) -> None:
    """Refuse (saying how to fix it) unless ``project`` is a clean, committed git work tree."""
    if git_lines(project, "rev-parse", "--show-toplevel") is None:
        raise fail(
            f"{project} is not a git repository. `scaffold update` merges the template's changes "
            "with yours using git, so commit the project first:\n"
            "  git init && git add -A && git commit -m 'Project before update'"
        )
    dirty = git_lines(project, "status", "--porcelain", "--untracked-files=normal", "--", ".")
    if dirty:
        listed = "\n".join(f"  {line}" for line in dirty[:10])
        more = f"\n  ... and {len(dirty) - 10} more" if len(dirty) > 10 else ""
        raise fail(
            "the project has uncommitted changes; commit or stash them first, so the update "
            f"can be reviewed and undone with git:\n{listed}{more}"
        )
    if not git_lines(project, "ls-files", "--", ANSWERS_FILE):
        raise fail(f"{ANSWERS_FILE} is not committed; commit it and retry")


@app.command()
def update(
    directory: Annotated[
        Path, typer.Argument(help="The project to update (default: the current directory).")
    ] = Path("."),
    data: Annotated[
        list[str] | None,
        typer.Option("--data", "-d", help="An answer to a new or changed question, as key=value."),
    ] = None,
    template: Annotated[
        Path | None,
        typer.Option(help="Update to this template directory instead of vibetuner's.", hidden=True),
    ] = None,
) -> None:
    """Update a generated project to the installed vibetuner's template.

    Your changes are kept; where they overlap the template's, the file gets conflict
    markers. Review the result with `git diff`.
    """
    import yaml

    from vibetuner.cli.template import (
        INSTALLED_KEY,
        has_git,
        has_ref,
        installed_template,
        is_git_root,
        questions,
    )

    project = directory.expanduser().resolve()
    answers_path = project / ANSWERS_FILE
    if not answers_path.is_file():
        raise fail(
            f"{project} has no {ANSWERS_FILE}; is it a project made with `vibetuner scaffold new`?"
        )
    if not has_git():
        raise fail(
            "git is not installed; `scaffold update` needs it to merge the template's "
            "changes with yours"
        )
    check_clean_repo(project)
    recorded = yaml.safe_load(answers_path.read_text(encoding="utf-8")) or {}
    old_ref = recorded.get("_commit")
    old_src = recorded.get("_src_path")
    if not old_ref or not old_src:
        raise fail(
            f"{ANSWERS_FILE} does not say which template version made this project (no _commit); "
            "it was rendered from a template without git history, so there is nothing to "
            "compare against"
        )
    if template is not None:
        source_dir = template.resolve()
    elif recorded_installed(Path(str(old_src)), INSTALLED_KEY) or not Path(str(old_src)).exists():
        source_dir = installed_template()
    elif is_git_root(Path(str(old_src))):
        source_dir = Path(str(old_src))
    else:
        source_dir = installed_template()
    try:
        answers = parse_data(data or [], questions(source_dir))
    except (ValueError, OSError) as exc:
        raise fail(str(exc)) from None
    src_path, ref = resolve_template(source_dir)
    if Path(src_path).is_dir() and not has_ref(Path(src_path), str(old_ref)):
        raise fail(
            f"this project was made from template version {old_ref}, which is not in the local "
            f"template history ({src_path}); copier needs that version to tell your changes from "
            "the template's. Update on the machine that created the project, or copy the new "
            "template's files by hand."
        )

    if Path(str(old_src)).resolve() != Path(src_path).resolve():
        raise fail(
            f"{ANSWERS_FILE} records the template at {old_src}, but it is now at {src_path}; "
            f"set _src_path in {ANSWERS_FILE} to the new place, commit, and retry"
        )

    import copier
    from copier.errors import CopierError

    try:
        copier.run_update(
            project,
            vcs_ref=ref,
            data=answers,
            defaults=True,
            overwrite=True,
            skip_answered=True,
            quiet=True,
            unsafe=False,
        )
    except (ValueError, CopierError) as exc:
        raise fail(str(exc)) from None
    changed = git_lines(project, "status", "--porcelain", "--", ".") or []
    conflicts = [line[3:] for line in changed if conflict_markers(project / line[3:].strip('"'))]
    if not changed:
        out.print(f"[green]Already up to date[/green] with template {ref or 'HEAD'}.")
        return
    summary = (
        f"Updated to template {ref or 'HEAD'}: {len(changed)} file(s) changed. "
        "Review with [bold]git diff[/bold]."
    )
    if conflicts:
        summary += "\n[yellow]Conflicts to resolve[/yellow] (look for <<<<<<<):\n" + "\n".join(
            f"  {c}" for c in conflicts
        )
    out.print(Panel(summary, border_style="yellow" if conflicts else "green", expand=False))


def recorded_installed(src: Path, key: str) -> bool:
    """True when ``src`` is a local history of the installed template (``.../templates/<key>``)."""
    return src.name == key and src.parent.name == "templates"


def conflict_markers(path: Path) -> bool:
    """True when ``path`` is a text file with copier's inline conflict markers."""
    try:
        return "<<<<<<< before updating" in path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
