"""Start-up costs of vibetuner against what it is built on, measured in the same run.

1. ``import vibetuner.models`` vs ``import beanie, pymongo``          target ratio <= 1.2
2. ``vibetuner --help`` vs ``python -c "import typer"``               target ratio <  3
3. process start to first 200 from /health: a scaffolded app, with a
   hand-written FastAPI + Beanie app registering the same models on
   the same in-memory database beside it                              no target (reported)

Prints medians and ratios; exits 1 when a target is missed.
Usage: python bench/startup.py [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from _common import free_port, paired_medians, report, run_quiet, stop, wait_for_200

PYTHON = sys.executable

BASELINE_APP = textwrap.dedent(
    """
    # A hand-written FastAPI + Beanie app: the same models, the same in-memory database.
    from contextlib import asynccontextmanager

    from beanie import init_beanie
    from fastapi import FastAPI

    from vibetuner.models import Blob, EmailVerificationToken, OAuthAccount, UserModel
    from vibetuner.models import core_document_models
    from vibetuner.mongo_memory_client import create_memory_client
    {app_models_import}

    @asynccontextmanager
    async def lifespan(app):
        client = create_memory_client()
        models = [*core_document_models(), *APP_MODELS]
        await init_beanie(database=client["bench"], document_models=models)
        app.state.db = client["bench"]
        yield
        client.close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/health")
    async def health():
        await app.state.db.command("ping")
        return {{"status": "ok"}}
    """
)


def installed_script(name: str) -> str:
    """The console script pip installed for this interpreter.

    Taken from the interpreter's own bin directory, not from PATH, where a version
    manager's shim (which starts a shell and a second program first) may stand in front.
    """
    beside = Path(sys.executable).with_name(name)
    if beside.is_file():
        return str(beside)
    return shutil.which(name) or sys.exit(f"the {name} script is not installed; pip install -e .")


def time_to_health(cmd: list[str], cwd: Path, env: dict[str, str], port: int) -> float:
    process = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        return wait_for_200(f"http://127.0.0.1:{port}/health", process)
    finally:
        stop(process)


def bench_first_request(repeat: int) -> tuple[float, float]:
    """Median seconds from process start to a 200 from /health, scaffolded vs hand-written."""
    work = Path(tempfile.mkdtemp(prefix="vibetuner-bench-"))
    try:
        project = work / "benchapp"
        run_quiet(
            [
                PYTHON,
                "-m",
                "vibetuner.cli",
                "scaffold",
                "new",
                str(project),
                "--defaults",
                "--data",
                "project_name=benchapp",
                "--data",
                "package_name=benchapp",
            ]
        )
        src = project / "src"
        (src / "baseline_app.py").write_text(
            BASELINE_APP.format(
                app_models_import="from benchapp.models import MODELS as APP_MODELS"
            )
        )
        # Bytecode caches on, as in any deployment: the untimed first start of each app
        # below writes them (the generated app's modules are new files).
        paths = [str(src), os.environ.get("PYTHONPATH", "")]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
        env.pop("MONGODB_URL", None)
        env["EMAIL_BACKEND"] = "console"
        env["DATA_DIR"] = str(work / "data")

        def serve(module: str) -> float:
            port = free_port()
            cmd = [
                PYTHON,
                "-m",
                "uvicorn",
                module,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ]
            return time_to_health(cmd, project, env, port)

        serve("benchapp.app:app")  # warm-up, not counted
        serve("baseline_app:app")
        ours, base = [], []
        for _ in range(repeat):  # interleave so drift hits both alike
            ours.append(serve("benchapp.app:app"))
            base.append(serve("baseline_app:app"))
        ours.sort()
        base.sort()
        return ours[len(ours) // 2], base[len(base) // 2]
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    n = args.repeat

    def python(code: str):
        return lambda: run_quiet([PYTHON, "-c", code])

    imports_ours, imports_base = paired_medians(
        python("import vibetuner.models"), python("import beanie, pymongo"), n
    )
    script = installed_script("vibetuner")
    help_ours, help_base = paired_medians(
        lambda: run_quiet([script, "--help"]), python("import typer"), n
    )
    first_ours, first_base = bench_first_request(n)
    ok = report(
        [
            (
                "import vibetuner.models / import beanie, pymongo (s)",
                imports_ours,
                imports_base,
                1.2,
                "<=",
            ),
            ("vibetuner --help / import typer (s)", help_ours, help_base, 3.0, "<="),
        ]
    )
    # The scaffolded app carries about 45 routes, templates, translations, jobs and the
    # admin; a one-route app is no peer for it, so this is reported, not judged.
    print(
        f"\nstart to first /health 200 (s, no target): scaffolded {first_ours:.3f}, "
        f"hand-written one-route app {first_base:.3f} ({first_ours / first_base:.2f}x)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
