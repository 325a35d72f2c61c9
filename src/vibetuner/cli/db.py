"""``vibetuner db indexes|migrate``: database chores for the project in the current directory.

The database is the one the app uses: ``MONGODB_URL`` from the environment or the
project's ``.env`` (in memory when unset).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    from beanie import Document

    from vibetuner.mongo import Mongo

app = typer.Typer(help="Indexes and migrations of the project's database.", no_args_is_help=True)
out = Console()
err = Console(stderr=True)


class CommandError(Exception):
    """A failure reported as one line and an exit code, not a traceback."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class IndexStatus:
    """One index of one collection and how it compares with the declaration."""

    collection: str
    name: str
    keys: str
    status: str  # ok | built | missing | differs | extra


def project_models() -> tuple[list[type[Document]], Path | None]:
    """Core models plus the project's (``[tool.vibetuner] models``), and its migrations folder.

    Outside a project only the core models are known.
    """
    from vibetuner.cli.project import ProjectError, find_project, load_object
    from vibetuner.context import document_models

    try:
        project = find_project()
    except ProjectError:
        err.print("[dim]No vibetuner project here: only vibetuner's own models.[/dim]")
        return document_models(), None
    project.activate()
    app_models: list[Any] = []
    if project.models:
        try:
            app_models = list(load_object(project.models))
        except ProjectError as exc:
            raise CommandError(str(exc), 2) from None
    return document_models(app_models), project.migrations


def load_settings() -> Any:
    """The app's settings, or a ``CommandError`` that names the bad setting."""
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from vibetuner.config import Settings
    from vibetuner.config_errors import settings_error_lines

    try:
        return Settings()
    except (ValidationError, SettingsError) as exc:
        lines = settings_error_lines(exc) or [str(exc)]
        raise CommandError("\n".join(lines), 2) from None


def describe_keys(index: Any) -> str:
    return ", ".join(
        f"{field} {direction}" for field, direction in index.index.document["key"].items()
    )


async def compare_indexes(
    mongo: Mongo, models: list[type[Document]], *, build: bool
) -> list[IndexStatus]:
    """Register ``models`` (building their indexes when ``build``) and compare with the database."""
    from beanie import init_beanie

    from vibetuner._compat.beanie import declared_indexes, present_indexes
    from vibetuner.mongo import init_models

    if build:
        await init_models(mongo, models)
    else:
        await init_beanie(database=mongo.database, document_models=list(models), skip_indexes=True)
    rows: list[IndexStatus] = []
    for model in models:
        collection = model.get_pymongo_collection()
        present = present_indexes(dict(await collection.index_information()))
        declared = declared_indexes(model)
        for index in declared:
            if index in present:
                status = "ok"
            elif any(index.same_fields(p) for p in present):
                status = "differs"
            else:
                status = "missing"
            rows.append(IndexStatus(collection.name, index.name, describe_keys(index), status))
        for index in present:
            if not any(index.same_fields(d) for d in declared):
                rows.append(IndexStatus(collection.name, index.name, describe_keys(index), "extra"))
    return rows


async def with_database(action: Any, *, writes: bool = False) -> Any:
    """Open the app's database, run ``action(mongo)``, close it.

    ``writes``: refused when the development database cannot keep the change (another
    process, the dev server, holds it).
    """
    from vibetuner.errors import VibetunerError
    from vibetuner.mongo import connect

    settings = load_settings()
    try:
        mongo = await connect(settings)
    except VibetunerError as exc:
        raise CommandError(str(exc)) from None
    try:
        refusal = mongo.devfile.refusal() if writes and mongo.devfile is not None else None
        if refusal is not None:
            raise CommandError(refusal, 2)
        if mongo.in_memory:
            err.print(
                "[yellow]MONGODB_URL is not set: working on an empty in-memory database.[/yellow]"
            )
        return await action(mongo)
    except VibetunerError as exc:
        raise CommandError(str(exc)) from None
    finally:
        await mongo.close()


def run_command(coro: Any) -> Any:
    try:
        return asyncio.run(coro)
    except CommandError as exc:
        err.print(f"[red]Error:[/red] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(exc.code) from None


STYLE = {"ok": "green", "built": "green", "missing": "red", "differs": "red", "extra": "yellow"}


@app.command(short_help="Build (or check) the models' indexes.")
def indexes(
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Only compare; build nothing. Exit 1 when an index is missing or differs.",
        ),
    ] = False,
) -> None:
    """Build the indexes of vibetuner's and the app's models, and list them.

    `extra` marks indexes found in the database that no model declares (they are left alone).
    """

    async def action() -> list[IndexStatus]:
        try:
            models, _ = project_models()
        except CommandError:
            raise
        rows: list[IndexStatus] = await with_database(
            lambda mongo: compare_indexes(mongo, models, build=not check), writes=not check
        )
        return rows

    rows = run_command(action())
    table = Table("collection", "index", "keys", "status")
    for row in rows:
        table.add_row(row.collection, row.name, row.keys, f"[{STYLE[row.status]}]{row.status}[/]")
    out.print(table)
    bad = [r for r in rows if r.status in ("missing", "differs")]
    if bad:
        out.print(
            f"[red]{len(bad)} index(es) missing or different.[/red] "
            "Run `vibetuner db indexes` to build them."
        )
        raise typer.Exit(1)
    out.print("[green]All declared indexes are in place.[/green]")


def migration_names(folder: Path) -> list[str]:
    """Migration modules of ``folder`` in the order they run (as Beanie orders them)."""
    from vibetuner.migrations import migration_files

    return migration_files(folder)


async def run_migrations(
    mongo: Mongo,
    folder: Path,
    *,
    backward: bool = False,
    distance: int = 0,
    use_transaction: bool = False,
) -> list[str]:
    """Run Beanie's migrations in ``folder`` on ``mongo``; return the names applied (or undone).

    ``distance`` 0 means all of them. Transactions need a replica set, so they are off
    unless asked for; the in-memory database has sessions but no transactions.
    """
    from beanie.migrations.models import MigrationLog, RunningDirections, RunningMode
    from beanie.migrations.runner import MigrationNode

    from vibetuner._compat.beanie import use_for_migrations

    if mongo.in_memory and use_transaction:
        raise CommandError("the in-memory database has no transactions; drop --transaction", 2)
    use_for_migrations(mongo.client, mongo.database)
    names = migration_names(folder)
    root = await MigrationNode.build(folder)
    before = root.name if root.name in names else None
    direction = RunningDirections.BACKWARD if backward else RunningDirections.FORWARD
    await root.run(
        mode=RunningMode(direction=direction, distance=distance),
        allow_index_dropping=False,
        use_transaction=use_transaction,
    )
    current = await MigrationLog.find_one({"is_current": True})
    after = current.name if current is not None else None
    start = names.index(before) + 1 if before else 0
    end = names.index(after) + 1 if after else 0
    return names[start:end] if not backward else list(reversed(names[end:start]))


async def migrate_locked(
    mongo: Mongo,
    folder: Path,
    *,
    backward: bool = False,
    distance: int = 0,
    use_transaction: bool = False,
    wait: float = 600,
) -> list[str]:
    """vibetuner's data migrations, then the project's, holding the migration lock.

    Another run on the same database waits for the lock (saying so once), up to ``wait``
    seconds; then a ``CommandError``. Returns the project migrations applied (or undone).
    """
    from vibetuner.migrations import MigrationLock, MigrationLocked, run_framework_migrations

    lock = MigrationLock(mongo.database)

    def waiting(holder: dict[str, Any] | None) -> None:
        by = holder.get("owner", "?") if holder else "?"
        err.print(f"Waiting for another `vibetuner db migrate` ({escape(str(by))}) to finish ...")

    try:
        await lock.acquire(wait, on_wait=waiting)
    except MigrationLocked as exc:
        raise CommandError(str(exc)) from None
    try:
        if not backward:
            for name in await run_framework_migrations(mongo.database):
                out.print(f"vibetuner data migration applied: {name}")
        if not migration_names(folder):
            return []
        return await run_migrations(
            mongo, folder, backward=backward, distance=distance, use_transaction=use_transaction
        )
    finally:
        await lock.release()


@app.command(short_help="Run data migrations.")
def migrate(
    backward: Annotated[
        bool, typer.Option("--backward", help="Undo migrations instead of applying them.")
    ] = False,
    distance: Annotated[int, typer.Option(min=0, help="How many to run (0: all).")] = 0,
    transaction: Annotated[
        bool,
        typer.Option(
            "--transaction", help="Run each migration in a transaction (needs a replica set)."
        ),
    ] = False,
    path: Annotated[
        Path | None,
        typer.Option(
            help="Migrations folder (default: [tool.vibetuner] migrations, else ./migrations)."
        ),
    ] = None,
    wait: Annotated[
        float,
        typer.Option(
            min=0,
            help="Seconds to wait for another `db migrate` on the same database to finish.",
        ),
    ] = 600,
) -> None:
    """Apply vibetuner's own data migrations, then the project's Beanie migrations.

    The project's run in file-name order, each once. One `db migrate` runs at a time on
    a database (a lock in MongoDB): another one started meanwhile, from this machine
    or another replica, waits for it, then finds nothing left to do.
    """

    async def action() -> list[str]:
        _, configured = project_models()
        folder = (path or configured or Path("migrations")).resolve()
        if not folder.is_dir():
            raise CommandError(f"no migrations folder at {folder}", 2)

        async def both(mongo: Any) -> list[str]:
            return await migrate_locked(
                mongo,
                folder,
                backward=backward,
                distance=distance,
                use_transaction=transaction,
                wait=wait,
            )

        applied: list[str] = await with_database(both, writes=True)
        return applied

    done = run_command(action())
    verb = "Undid" if backward else "Applied"
    if not done:
        out.print("[green]Nothing to migrate.[/green]")
        return
    out.print(f"[green]{verb} {len(done)} migration(s):[/green]")
    for name in done:
        out.print(f"  {name}")


@app.command(short_help="Wipe the development database.")
def reset(
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Wipe the development database (the in-memory database's file in DATA_DIR)."""
    from vibetuner.mongo_devfile import DevDatabaseFile

    async def action() -> Path:
        settings = load_settings()
        if settings.mongodb_url is not None:
            raise CommandError(
                "db reset only wipes the development database, and MONGODB_URL is set; "
                "drop a real database with MongoDB's own tools",
                2,
            )
        store = DevDatabaseFile(None, settings.data_dir)
        if not store.acquire():
            raise CommandError(
                "the development server is using the development database; stop it first"
            )
        try:
            if not yes and not typer.confirm(f"Delete every document in {store.path}?"):
                raise CommandError("nothing deleted", 1)
            store.path.unlink(missing_ok=True)
        finally:
            store.release()
        return store.path

    path = run_command(action())
    out.print(f"[green]Development database wiped:[/green] {escape(str(path))}")
