"""`vibetuner db indexes|migrate` and the checks of `vibetuner run`."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from tests.scaffold.conftest import run_cli, scaffold
from vibetuner.cli.db import run_migrations

MIGRATION = """
from beanie import Document, free_fall_migration


class OldNote(Document):
    title: str

    class Settings:
        name = "mig_notes"


class NewNote(Document):
    title: str
    slug: str = ""

    class Settings:
        name = "mig_notes"


class Forward:
    @free_fall_migration(document_models=[OldNote, NewNote])
    async def add_slug(self, session):
        async for note in OldNote.find_all(session=session):
            slug = note.title.lower().replace(" ", "-")
            await NewNote(id=note.id, title=note.title, slug=slug).replace(session=session)


class Backward:
    @free_fall_migration(document_models=[OldNote, NewNote])
    async def drop_slug(self, session):
        async for note in NewNote.find_all(session=session):
            await OldNote(id=note.id, title=note.title).replace(session=session)
"""


@pytest.fixture
def project(tmp_path, monkeypatch, request):
    """A generated project as the current directory, importable from this process."""
    package = f"p_{request.node.name.split('[')[0][-20:].strip('_')}".lower()
    root = scaffold(tmp_path / "proj", f"package_name={package}")
    monkeypatch.chdir(root)
    monkeypatch.setattr(sys, "path", list(sys.path))
    for name in ("MONGODB_URL", "MONGODB_DB", "ENVIRONMENT"):
        monkeypatch.delenv(name, raising=False)
    yield root
    for name in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
        del sys.modules[name]


def plain(result) -> str:
    return " ".join(result.output.split())


def test_db_indexes_builds_core_and_app_indexes(project):
    result = run_cli("db", "indexes")
    assert result.exit_code == 0, result.output
    text = plain(result)
    assert "owner_newest_first" in text  # the app's Note index
    assert "email_unique" in text  # vibetuner's users index
    assert "All declared indexes are in place." in text


def test_db_indexes_check_reports_missing_indexes(project):
    # A new in-memory database has no indexes yet, so nothing is in place.
    result = run_cli("db", "indexes", "--check")
    assert result.exit_code == 1
    assert "missing" in result.output
    assert "owner_newest_first" in plain(result)


def test_db_indexes_outside_a_project_covers_the_core(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MONGODB_URL", raising=False)
    result = run_cli("db", "indexes")
    assert result.exit_code == 0, result.output
    assert "email_unique" in plain(result)


def test_db_commands_report_an_unreachable_server_in_one_line(project, monkeypatch):
    monkeypatch.setenv("MONGODB_URL", "mongodb://127.0.0.1:9/app")
    monkeypatch.setenv("MONGODB_TIMEOUT_MS", "200")
    result = run_cli("db", "indexes")
    assert result.exit_code == 1
    assert "cannot reach MongoDB at 127.0.0.1:9" in plain(result)
    assert "Traceback" not in result.output


def test_db_commands_report_bad_settings(project, monkeypatch):
    monkeypatch.setenv("MONGODB_TIMEOUT_MS", "not-a-number")
    result = run_cli("db", "indexes")
    assert result.exit_code == 2
    assert "MONGODB_TIMEOUT_MS: must be a whole number" in result.output


def test_db_migrate_with_no_migrations(project):
    result = run_cli("db", "migrate")
    assert result.exit_code == 0, result.output
    assert "Nothing to migrate." in result.output


def test_db_migrate_applies_the_project_migrations(project):
    (project / "migrations" / "20250101000000_slug.py").write_text(textwrap.dedent(MIGRATION))
    result = run_cli("db", "migrate")
    assert result.exit_code == 0, result.output
    assert "Applied 1 migration(s):" in result.output
    assert "20250101000000_slug.py" in result.output


def test_db_migrate_missing_folder(project):
    result = run_cli("db", "migrate", "--path", "nowhere")
    assert result.exit_code == 2
    assert "no migrations folder" in result.output


async def test_migrations_change_documents_once_and_roll_back(tmp_path, vibetuner_db):
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "0001_slug.py").write_text(textwrap.dedent(MIGRATION))
    collection = vibetuner_db.database["mig_notes"]
    await collection.insert_one({"title": "Hello World"})

    assert await run_migrations(vibetuner_db, folder) == ["0001_slug.py"]
    assert (await collection.find_one({}))["slug"] == "hello-world"
    # Applied migrations are recorded and not run again.
    assert await run_migrations(vibetuner_db, folder) == []

    assert await run_migrations(vibetuner_db, folder, backward=True) == ["0001_slug.py"]
    assert "slug" not in await collection.find_one({})


def test_run_outside_a_project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for command in ("dev", "prod"):
        result = run_cli("run", command)
        assert result.exit_code == 2
        assert "no pyproject.toml" in result.output


def test_run_needs_the_app_entry(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    monkeypatch.chdir(tmp_path)
    result = run_cli("run", "dev")
    assert result.exit_code == 2
    assert "[tool.vibetuner]" in result.output and 'app = "my_app.app:app"' in result.output


def test_run_prod_rejects_a_bad_worker_count(project, monkeypatch):
    monkeypatch.setenv("WEB_CONCURRENCY", "many")
    result = run_cli("run", "prod")
    assert result.exit_code == 2
    assert "WEB_CONCURRENCY must be a positive number" in result.output


def test_run_prod_rejects_an_unknown_http_parser(project):
    result = run_cli("run", "prod", "--http", "fast")
    assert result.exit_code == 2
    assert "'fast' is not one of 'h11', 'httptools'" in " ".join(result.output.split())


def test_help_does_not_load_heavy_modules(tmp_path):
    import subprocess

    code = (
        "import sys\n"
        "from vibetuner.cli import app\n"
        "from typer.testing import CliRunner\n"
        "CliRunner().invoke(app, ['--help'])\n"
        "names = ('copier', 'uvicorn', 'beanie', 'fastapi', 'aioboto3', 'authlib')\n"
        "heavy = [m for m in names if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


def test_project_name_with_path_is_relative_to_cwd(tmp_path):
    # The answers file records an absolute template path, never a relative one.
    root = scaffold(tmp_path / "app")
    import yaml

    answers = yaml.safe_load((root / ".copier-answers.yml").read_text())
    assert Path(answers["_src_path"]).is_absolute()


def test_version_and_bare_help():
    from vibetuner import __version__

    version = run_cli("--version")
    assert version.exit_code == 0 and version.output.strip() == f"vibetuner {__version__}"
    bare = run_cli()
    assert bare.exit_code == 0 and "Usage: vibetuner" in bare.output and "scaffold" in bare.output


def test_every_command_list_fits_without_cut_descriptions():
    from typer.testing import CliRunner

    from vibetuner.cli import app

    runner = CliRunner()
    groups = ["", "scaffold", "run", "db", "blobs", "css", "i18n", "jobs", "users"]
    for group in groups:
        shown = runner.invoke(app, [*group.split(), "--help"], terminal_width=80)
        assert shown.exit_code == 0, group
        listed = shown.output.split("Commands:", 1)[-1].splitlines()
        cut = [line for line in listed if line.rstrip().endswith("...")]
        assert cut == [], (group, cut)
    top = runner.invoke(app, ["--help"], terminal_width=80).output
    assert "Examples:" in top and "vibetuner scaffold new" in top


def test_the_dev_port_is_8000_or_the_next_free_one():
    import socket

    from vibetuner.cli.run import free_dev_port
    from vibetuner.testing import free_port

    first = free_port()
    assert free_dev_port("127.0.0.1", first) == first
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", first))
        taken.listen()
        chosen = free_dev_port("127.0.0.1", first)
    assert chosen != first and first < chosen < first + 20
