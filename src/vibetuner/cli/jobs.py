"""``vibetuner jobs list|retry|purge``: the jobs that failed every attempt.

They are ``FailedJob`` documents in the app's database. ``retry`` queues a job again
with the same arguments: to Redis when ``REDIS_URL`` is set (a worker runs it), else it
runs right here, in this command, as it would have in the web process.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

app = typer.Typer(
    help="Background jobs: failed ones (list, retry, purge) and worker health.",
    no_args_is_help=True,
)
out = Console()
err = Console(stderr=True)


@asynccontextmanager
async def running_app(*, writes: bool = False) -> AsyncIterator[Any]:
    """The project's app with its lifespan running (database, job queue); yields its feature.

    ``writes``: refused when the development database cannot keep the change.
    """
    from vibetuner.cli.app_session import running_app as app_running
    from vibetuner.jobs.feature import JobsFeature
    from vibetuner.web.context import app_context

    async with app_running(writes=writes) as loaded:
        feature = app_context(loaded).find_feature(JobsFeature)
        if feature is None:
            raise _fail("this app has no JobsFeature: add JobsFeature() to its features")
        yield feature


def _fail(message: str, code: int = 2) -> typer.Exit:
    from vibetuner.cli.app_session import fail

    return fail(message, code)


@app.command(name="list")
def list_failed(
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many.")] = 50,
) -> None:
    """The failed jobs, newest first."""
    import asyncio

    async def main() -> None:
        from vibetuner.models.failed_job import FailedJob

        async with running_app():
            failed = await FailedJob.find().sort("-failed_at").limit(limit).to_list()
            total = await FailedJob.count()
        if not failed:
            out.print("No failed jobs.")
            return
        table = Table("id", "job", "attempts", "failed at (UTC)", "error")
        for job in failed:
            table.add_row(
                str(job.id),
                job.task,
                str(job.attempts),
                job.failed_at.strftime("%Y-%m-%d %H:%M:%S"),
                escape(job.error.splitlines()[-1] if job.error else "")[:80],
            )
        out.print(table)
        if total > len(failed):
            out.print(f"... and {total - len(failed)} more")

    asyncio.run(main())


@app.command(short_help="Queue failed jobs again.")
def retry(
    job_ids: Annotated[
        list[str] | None, typer.Argument(help="Ids from `vibetuner jobs list`.")
    ] = None,
    all_failed: Annotated[bool, typer.Option("--all", help="Retry every failed job.")] = False,
) -> None:
    """Queue failed jobs again with their arguments (exit 1 if one fails again here)."""
    import asyncio

    if not job_ids and not all_failed:
        raise _fail("name the jobs to retry (ids from `vibetuner jobs list`), or use --all")

    async def main() -> int:
        from vibetuner.jobs.feature import requeue_failed
        from vibetuner.jobs.inprocess import InProcessQueue
        from vibetuner.models.failed_job import FailedJob
        from vibetuner.models.ids import parse_object_id
        from vibetuner.models.mixins import utcnow

        async with running_app(writes=True) as feature:
            if all_failed:
                chosen = await FailedJob.find().sort("failed_at").to_list()
            else:
                chosen = []
                for raw in job_ids or []:
                    oid = parse_object_id(raw)
                    found = await FailedJob.get(oid) if oid is not None else None
                    if found is None:
                        raise _fail(f"no failed job has the id {raw!r}")
                    chosen.append(found)
            queue = feature.queue
            started = utcnow()
            for failed in chosen:
                if not await requeue_failed(feature, failed):
                    err.print(
                        f"[yellow]Skipped[/yellow] {failed.id}: no job named {failed.task} here"
                    )
                    continue
                if isinstance(queue, InProcessQueue):
                    await queue.drain()
                    out.print(f"Ran {failed.task} ({failed.id})")
                else:
                    out.print(f"Queued {failed.task} ({failed.id})")
            # Run here (no Redis): a job that failed again is a new FailedJob.
            failed_again = await FailedJob.find({"failed_at": {"$gte": started}}).count()
            if failed_again:
                err.print(
                    f"[red]{failed_again} job(s) failed again[/red]: see `vibetuner jobs list`"
                )
            return 1 if failed_again else 0

    code = asyncio.run(main())
    if code:
        raise typer.Exit(code)


@app.command()
def purge(
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    older_than_days: Annotated[
        int | None, typer.Option(min=0, help="Only those that failed this many days ago or more.")
    ] = None,
) -> None:
    """Delete failed jobs (all, or the old ones)."""
    import asyncio
    from datetime import timedelta

    if not yes and not typer.confirm("Delete the failed jobs for good?"):
        raise typer.Exit(1)

    async def main() -> int:
        from vibetuner.models.failed_job import FailedJob
        from vibetuner.models.mixins import utcnow

        async with running_app(writes=True):
            query: dict[str, Any] = {}
            if older_than_days is not None:
                query["failed_at"] = {"$lte": utcnow() - timedelta(days=older_than_days)}
            result = await FailedJob.get_pymongo_collection().delete_many(query)
            return int(result.deleted_count)

    out.print(f"Deleted {asyncio.run(main())} failed job(s).")


@app.command(short_help="Exit 0 when a worker beat recently, else 1 (a healthcheck).")
def health() -> None:
    """Check that a job worker is alive: one line, exit 0 when at least one beat within
    JOBS_HEARTBEAT_TIMEOUT, else exit 1 (none, stale, or Redis unreachable).

    With REDIS_URL the beats are those of `vibetuner run worker` processes; without it,
    the web process that runs the jobs beats into DATA_DIR.
    """
    import asyncio

    from vibetuner.cli.run import check_app_or_exit, project_or_exit
    from vibetuner.jobs.heartbeat import read_beats
    from vibetuner.web.context import app_context

    project = project_or_exit()
    project.activate()
    settings = app_context(check_app_or_exit(project)).settings
    window = settings.jobs_heartbeat_timeout
    where = "worker" if settings.redis_url is not None else "in-process job runner"
    try:
        beats = asyncio.run(read_beats(settings))
    except Exception as exc:  # Redis unreachable: no worker can be working either
        out.print(f"unhealthy: cannot reach Redis ({type(exc).__name__})", soft_wrap=True)
        raise typer.Exit(1) from None
    if beats.fresh:
        out.print(
            f"ok: {beats.fresh} {where}(s) beat within {window:g} s "
            f"(latest {beats.latest_age or 0:.1f} s ago)"
        )
        return
    if beats.latest_age is None:
        out.print(f"unhealthy: no {where} has ever beaten")
    else:
        out.print(
            f"unhealthy: no {where} beat within {window:g} s (latest {beats.latest_age:.0f} s ago)"
        )
    raise typer.Exit(1)
