"""``vibetuner run dev|prod``: serve the app of the project in the current directory."""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from vibetuner.cli.project import Project, ProjectError, find_project

if TYPE_CHECKING:
    from vibetuner.context import AppContext

app = typer.Typer(
    help="Serve the app of the project in the current directory.", no_args_is_help=True
)
err = Console(stderr=True)


def project_or_exit() -> Project:
    try:
        return find_project()
    except ProjectError as exc:
        err.print(f"[red]Error:[/red] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(2) from None


def check_app_or_exit(project: Project) -> Any:
    """Import the app once before serving, so that bad settings or a broken app entry end
    in one clear line (exit code 2) instead of a traceback from each worker. Returns it."""
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from vibetuner.cli.project import load_object
    from vibetuner.config_errors import settings_error_lines
    from vibetuner.errors import VibetunerError

    try:
        return load_object(project.app)
    except ProjectError as exc:
        err.print(f"[red]Error:[/red] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(2) from None
    except (ValidationError, SettingsError) as exc:
        for line in settings_error_lines(exc) or [str(exc)]:
            err.print(f"[red]Error:[/red] {escape(line)}", soft_wrap=True)
        raise typer.Exit(2) from None
    except VibetunerError as exc:
        err.print(f"[red]Error:[/red] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(2) from None


def startup_or_exit(loaded: Any) -> None:
    """Run the app's startup and shutdown once; exit 2 with one line if startup fails."""
    import asyncio

    from vibetuner.errors import VibetunerError

    router = getattr(loaded, "router", None)
    lifespan = getattr(router, "lifespan_context", None)
    if lifespan is None:
        return

    async def probe() -> None:
        async with lifespan(loaded):
            pass

    try:
        asyncio.run(probe())
    except VibetunerError as exc:
        err.print(f"[red]Error:[/red] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(2) from None


def port_free_or_exit(host: str, port: int) -> None:
    """Exit 2 with one line naming the port when something already listens there."""
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            err.print(
                f"[red]Error:[/red] cannot listen on {escape(host)}:{port} ({exc.strerror}); "
                "stop what uses it, or pick another port with --port",
                soft_wrap=True,
            )
            raise typer.Exit(2) from None


DEV_PORT = 8000
DEV_PORTS_TRIED = 20


def can_listen(host: str, port: int) -> bool:
    """Whether nothing listens on ``host:port`` right now."""
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_dev_port(host: str, first: int = DEV_PORT) -> int:
    """``first`` (8000) when free, else the next free port after it, said in one line.

    Another app (or a dev server left running) often holds 8000 on a laptop; asking for
    a port explicitly (``--port``) still fails when it is taken.
    """
    for port in range(first, first + DEV_PORTS_TRIED):
        if can_listen(host, port):
            if port != first:
                err.print(f"[yellow]Port {first} is in use: serving on {port} instead.[/yellow]")
            return port
    return first  # none free: port_free_or_exit says so in one line


def workers_from_env() -> int:
    """``WEB_CONCURRENCY`` (the usual variable of hosting platforms), else 1."""
    raw = os.environ.get("WEB_CONCURRENCY", "").strip() or "1"
    if not raw.isdigit() or int(raw) < 1:
        err.print(f"[red]Error:[/red] WEB_CONCURRENCY must be a positive number, got {raw!r}")
        raise typer.Exit(2)
    return int(raw)


@app.command(short_help="Serve with auto-reload (development).")
def dev(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int | None,
        typer.Option(
            min=1, max=65535, help="Port to listen on (default: 8000, else the next free one)."
        ),
    ] = None,
    log_level: Annotated[
        str | None, typer.Option(help="uvicorn's log level (default: LOG_LEVEL).")
    ] = None,
) -> None:
    """Serve with auto-reload on code changes (development); rebuild the stylesheet as you edit."""
    project = project_or_exit()
    project.activate()
    if port is None:
        port = free_dev_port(host)
    follow_the_port(host, port)
    # Bad settings, a broken app or a failing startup (database unreachable ...) end here
    # in one line each, exit 2, before the reloader starts and would wait for changes.
    loaded = check_app_or_exit(project)
    log_config = logging_for(loaded)
    port_free_or_exit(host, port)
    startup_or_exit(loaded)
    watched = project.source_dir or project.root
    err.print(
        f"[bold]{project.app}[/bold] on [cyan]http://{host}:{port}[/cyan] "
        f"(reloading on changes in {watched} and .env)"
    )
    from vibetuner.cli.css import start_watcher
    from vibetuner.web.client_address import app_trusted_proxies

    proxies = app_trusted_proxies(loaded)
    watcher = start_watcher(project)
    try:
        _serve_dev(
            project.app, host, port, watched, log_level, proxies, log_config, project.root / ".env"
        )
    finally:
        if watcher is not None:
            watcher.terminate()
            watcher.wait(timeout=5)


def follow_the_port(host: str, port: int) -> None:
    """Without a ``BASE_URL`` (environment or ``.env``), links in emails and OAuth
    callbacks point at the address this dev server listens on, not at port 8000."""
    import os

    from vibetuner.config import Settings

    if "BASE_URL" in os.environ:
        return
    try:
        configured = "base_url" in Settings().model_fields_set
    except Exception:  # bad settings are reported next, in one line, by the app check
        return
    if not configured:
        shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        shown = f"[{shown}]" if ":" in shown else shown
        # The reloader's worker process inherits it.
        os.environ["BASE_URL"] = f"http://{shown}:{port}"


def logging_for(loaded: Any) -> dict[str, Any]:
    """Set logging up from the app's settings; returns the same setup for uvicorn."""
    from vibetuner.logs import configure_logging, logging_config
    from vibetuner.web.context import app_context

    settings = app_context(loaded).settings
    configure_logging(settings)
    return logging_config(settings)


def _serve_dev(
    app_spec: str,
    host: str,
    port: int,
    watched: Path,
    log_level: str | None,
    trusted_proxies: tuple[str, ...],
    log_config: dict[str, Any],
    env_file: Path,
) -> None:
    import sys

    import uvicorn

    from vibetuner._compat.uvicorn import run_reloading
    from vibetuner.web.client_address import uvicorn_proxy_options

    # As uvicorn.run(app_dir=...) does: the app is imported from the watched folder.
    sys.path.insert(0, str(watched))
    config = uvicorn.Config(
        app_spec,
        host=host,
        port=port,
        reload=True,
        reload_dirs=[str(watched)],
        log_level=log_level,
        # As in prod: X-Forwarded-* only from TRUSTED_PROXIES (uvicorn's own default
        # would believe any local process, and a rotating header escape the rate limits).
        **uvicorn_proxy_options(trusted_proxies),
        log_config=log_config,
    )
    # Settings are read at startup: a changed .env restarts the app, as code does.
    try:
        run_reloading(config, files=[env_file])
    except KeyboardInterrupt:
        pass


class HttpParser(StrEnum):
    """The HTTP/1.1 implementation ``run prod`` gives uvicorn."""

    H11 = "h11"
    HTTPTOOLS = "httptools"


# A request's head (line and headers) may be 64 KiB with h11: browsers send a few KiB,
# cookies are at most 4 KiB each. Beyond it h11 answers 400 and closes the connection;
# httptools reads a head of any size (faster, for when the proxy in front limits heads).
MAX_REQUEST_HEAD = 64 * 1024


def prod_server_options(http: HttpParser) -> dict[str, Any]:
    """What ``run prod`` asks of uvicorn besides address, workers and proxies.

    An idle keep-alive connection is closed after 5 s. A body that stalls is the app's to
    end (``REQUEST_BODY_TIMEOUT``, ``vibetuner.web.request_body``): uvicorn has no timeout
    for it.
    """
    options: dict[str, Any] = {"http": http.value, "timeout_keep_alive": 5}
    if http is HttpParser.H11:
        options["h11_max_incomplete_event_size"] = MAX_REQUEST_HEAD
    return options


@app.command()
def prod(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "0.0.0.0",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="Worker processes (default: WEB_CONCURRENCY, else 1)."),
    ] = None,
    log_level: Annotated[
        str | None, typer.Option(help="uvicorn's log level (default: LOG_LEVEL).")
    ] = None,
    http: Annotated[
        HttpParser,
        typer.Option(
            help="HTTP parser: h11 refuses request heads over 64 KiB; httptools is faster "
            "but takes heads of any size (only behind a proxy that limits them)."
        ),
    ] = HttpParser.H11,
) -> None:
    """Serve without reload, with several worker processes (production)."""
    import uvicorn

    from vibetuner.web.client_address import app_trusted_proxies, uvicorn_proxy_options
    from vibetuner.web.context import app_context

    project = project_or_exit()
    project.activate()
    count = workers or workers_from_env()
    loaded = check_app_or_exit(project)
    log_config = logging_for(loaded)
    port_free_or_exit(host, port)
    err.print(f"[bold]{project.app}[/bold] on {host}:{port} with {count} worker(s)")
    uvicorn.run(
        project.app,
        host=host,
        port=port,
        workers=count,
        app_dir=str(project.source_dir or project.root),
        log_level=log_level,
        **prod_server_options(http),
        log_config=log_config,
        # On SIGTERM: stop accepting, let requests in flight finish for this long.
        timeout_graceful_shutdown=app_context(loaded).settings.shutdown_grace_seconds,
        # X-Forwarded-For/-Proto only from TRUSTED_PROXIES (default: from nobody).
        **uvicorn_proxy_options(app_trusted_proxies(loaded)),
    )


@app.command(short_help="Run background jobs from Redis.")
def worker(
    concurrency: Annotated[
        int | None,
        typer.Option(min=1, help="Jobs run at once (default: JOBS_CONCURRENCY)."),
    ] = None,
) -> None:
    """Run background jobs from Redis (REDIS_URL) until stopped (SIGINT/SIGTERM).

    The jobs run with the context that ``[tool.vibetuner] worker`` names: its database,
    models, mailer and features (the blob store ...), and no web app: no routes, no
    admin, no sign-in pages.
    """
    import asyncio

    from vibetuner import observability
    from vibetuner.context import running
    from vibetuner.errors import VibetunerError
    from vibetuner.jobs.feature import JobsFeature
    from vibetuner.jobs.redis_queue import RedisQueue
    from vibetuner.logs import configure_logging
    from vibetuner.observability.feature import ObservabilityFeature

    project = project_or_exit()
    project.activate()
    context = worker_context_or_exit(project)
    configure_logging(context.settings)
    # Traces, metrics and error reports of the jobs, as in the web processes.
    extra = observability.features(context.settings, list(context.features))
    for added in extra:
        if isinstance(added, ObservabilityFeature):
            added.install(context.settings)
    if extra:
        context.features = [*context.features, *extra]
    feature = context.find_feature(JobsFeature)
    if feature is None:
        err.print(
            f"[red]Error:[/red] {project.worker} has no JobsFeature: add JobsFeature(jobs=[...]) "
            "to its features",
            soft_wrap=True,
        )
        raise typer.Exit(2)
    if context.settings.redis_url is None:
        err.print(
            "[red]Error:[/red] REDIS_URL is not set: jobs run inside the web process, so "
            "there is nothing for a worker to do. Set REDIS_URL to run them in workers."
        )
        raise typer.Exit(2)
    feature.worker_mode = True
    feature.worker_concurrency = concurrency
    count = concurrency or context.settings.jobs_concurrency
    err.print(f"[bold]{project.worker}[/bold]: running jobs ({count} at once) from Redis")

    async def main() -> None:
        async with running(context):
            assert isinstance(feature.queue, RedisQueue)
            await feature.queue.run_worker()

    try:
        asyncio.run(main())
    except VibetunerError as exc:
        err.print(f"[red]Error:[/red] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        pass


def worker_context_or_exit(project: Project) -> AppContext:
    """The worker's ``AppContext`` from ``[tool.vibetuner] worker``, built without the web
    app; one clear line (exit code 2) when it is missing or broken."""
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from vibetuner.cli.project import load_object
    from vibetuner.config_errors import settings_error_lines
    from vibetuner.context import AppContext
    from vibetuner.errors import VibetunerError

    if project.worker is None:
        err.print(
            "[red]Error:[/red] pyproject.toml names no worker: add to [tool.vibetuner]\n"
            '  worker = "my_app.worker:build_context"\n'
            "a function that returns create_context(features=[..., JobsFeature(jobs=[...])], "
            "models=...) with what the jobs need",
            soft_wrap=True,
        )
        raise typer.Exit(2)
    try:
        found = load_object(project.worker)
        context = found() if callable(found) else found
    except ProjectError as exc:
        err.print(f"[red]Error:[/red] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(2) from None
    except (ValidationError, SettingsError) as exc:
        for line in settings_error_lines(exc) or [str(exc)]:
            err.print(f"[red]Error:[/red] {escape(line)}", soft_wrap=True)
        raise typer.Exit(2) from None
    except VibetunerError as exc:
        err.print(f"[red]Error:[/red] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(2) from None
    if not isinstance(context, AppContext):
        err.print(
            f"[red]Error:[/red] {project.worker} is not an AppContext (nor a function that "
            "returns one): build it with vibetuner.create_context(...)",
            soft_wrap=True,
        )
        raise typer.Exit(2)
    return context
