"""Helpers for the scaffold tests: render the template through the real CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from vibetuner.cli import app as cli_app

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = REPO_ROOT / "scaffold_templates"


@pytest.fixture(autouse=True)
def template_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Keep the template repositories of these tests out of the user's cache."""
    cache = tmp_path_factory.getbasetemp() / "vibetuner-cache"
    monkeypatch.setenv("VIBETUNER_CACHE_DIR", str(cache))
    return cache


def run_cli(*args: str, cwd: Path | None = None) -> Result:
    """Run ``vibetuner ARGS`` in process; returns click's result (exit_code, output)."""
    runner = CliRunner()
    if cwd is None:
        return runner.invoke(cli_app, list(args), catch_exceptions=False)
    old = Path.cwd()
    os.chdir(cwd)
    try:
        return runner.invoke(cli_app, list(args), catch_exceptions=False)
    finally:
        os.chdir(old)


def scaffold(target: Path, *data: str, template: Path | None = None) -> Path:
    """``vibetuner scaffold new TARGET --defaults --data ...``; fails the test unless it works."""
    args = ["scaffold", "new", str(target), "--defaults"]
    for item in data:
        args += ["--data", item]
    if template is not None:
        args += ["--template", str(template)]
    result = run_cli(*args)
    assert result.exit_code == 0, result.output
    return target


def git(cwd: Path, *args: str) -> str:
    """Run git with a fixed identity; fail the test on error."""
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Test",
        "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "Test",
        "GIT_COMMITTER_EMAIL": "test@example.com",
    }
    result = subprocess.run(
        [
            "git",
            "-c",
            "commit.gpgsign=false",
            "-c",
            "tag.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
            *args,
        ],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"git {args}: {result.stderr}"
    return result.stdout


def commit_all(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


@pytest.fixture
def template_copy(tmp_path: Path) -> Iterator[Path]:
    """A copy of the project template that a test may change."""
    copy = tmp_path / "template"
    shutil.copytree(TEMPLATE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    yield copy


def python_in(venv: Path) -> Path:
    return venv / ("Scripts" if sys.platform == "win32" else "bin") / "python"
