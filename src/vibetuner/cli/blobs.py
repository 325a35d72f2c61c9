"""``vibetuner blobs check [--delete]``: find (and remove) blob orphans.

Orphans are objects in the blob backend that no ``Blob`` document refers to, ``Blob``
documents whose object is gone, and uploads that failed or never finished. The
database and backend are the app's: ``MONGODB_URL``, ``BLOB_BACKEND`` and friends from
the environment or ``.env``.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

app = typer.Typer(help="Blob storage maintenance.", no_args_is_help=True)
out = Console()
err = Console(stderr=True)


class CheckError(Exception):
    """A failure reported as one line and exit code 2."""


@app.command(short_help="Report (and remove) orphaned blobs.")
def check(
    delete: Annotated[
        bool, typer.Option("--delete", help="Remove the orphans found (objects and metadata).")
    ] = False,
    grace_minutes: Annotated[
        int,
        typer.Option(
            "--grace-minutes", min=0, help="Pending uploads younger than this are in progress."
        ),
    ] = 60,
) -> None:
    """Report objects without metadata and metadata without objects; exit 1 if any."""
    import asyncio

    try:
        clean = asyncio.run(_check(delete=delete, grace_minutes=grace_minutes))
    except CheckError as exc:
        err.print(f"[red]Error:[/red] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(2) from None
    if not clean and not delete:
        raise typer.Exit(1)


async def _check(*, delete: bool, grace_minutes: int, settings: Any = None) -> bool:
    from datetime import timedelta

    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from vibetuner.config import Settings
    from vibetuner.config_errors import settings_error_lines
    from vibetuner.errors import VibetunerError

    try:
        active = settings or Settings()
    except (ValidationError, SettingsError) as exc:
        raise CheckError("\n".join(settings_error_lines(exc) or [str(exc)])) from None
    if active.mongodb_url is None and active.environment != "development":
        # An in-memory database is empty: every stored object would look orphaned.
        raise CheckError(
            "MONGODB_URL is not set and this is not development: blob metadata lives in "
            "MongoDB, so there is nothing to check against. Set MONGODB_URL to the app's "
            "database."
        )
    try:
        return await run_check(
            active, delete=delete, grace=timedelta(minutes=grace_minutes), console=out
        )
    except VibetunerError as exc:
        raise CheckError(str(exc)) from None


async def run_check(
    settings: Any, *, delete: bool, grace: Any, console: Console, mongo: Any = None
) -> bool:
    """Open the database (unless ``mongo`` is given) and the blob store, print the
    orphans, optionally remove them. Returns True when nothing was orphaned.
    """
    from vibetuner.blobs.check import find_orphans, remove_orphans
    from vibetuner.blobs.store import BlobStore
    from vibetuner.context import document_models
    from vibetuner.errors import ConfigurationError
    from vibetuner.mongo import connect, init_models

    own = mongo is None
    if own:
        mongo = await connect(settings)
    try:
        refusal = mongo.devfile.refusal() if delete and mongo.devfile is not None else None
        if refusal is not None:
            # The file's snapshot may miss the newest uploads: they would look orphaned.
            raise ConfigurationError(refusal)
        if own:
            await init_models(mongo, document_models())
        async with BlobStore.from_settings(settings) as store:
            report = await find_orphans(store, grace=grace)
            console.print(f"Blob backend: {store.backend.name}")
            for key in report.objects_without_metadata:
                console.print(f"object without metadata: {escape(key)}")
            for blob in report.metadata_without_objects:
                console.print(f"metadata without object: {blob.id} ({escape(blob.key)})")
            for blob in report.unfinished:
                console.print(
                    f"unfinished upload ({blob.status.value}): {blob.id} ({escape(blob.key)})"
                )
            for ref in report.stale_uploads:
                console.print(f"interrupted upload: {escape(ref)}")
            if report.clean:
                console.print("[green]No orphans.[/green]")
                return True
            total = report.total
            if delete:
                removed = await remove_orphans(store, report)
                console.print(f"[green]Removed {removed} orphans.[/green]")
            else:
                console.print(
                    f"[yellow]{total} orphans; run with --delete to remove them.[/yellow]"
                )
            return False
    finally:
        if own:
            await mongo.close()
