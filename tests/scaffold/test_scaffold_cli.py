"""`vibetuner scaffold new` input checks, and `scaffold update` after a template change."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import yaml
from packaging.version import Version

from tests.scaffold.conftest import REPO_ROOT, commit_all, git, run_cli, scaffold
from vibetuner.cli.template import installed_template


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("package_name=My-App", "'My-App' is not a valid package name"),
        ("package_name=1app", "'1app' is not a valid package name"),
        ("package_name=class", "'class' is a Python keyword"),
        ("package_name=vibetuner", "would shadow an existing module"),
        ("blob_storage=gcs", "'gcs' is not in ['local', 's3']"),
        ("oauth_providers=google,facebook", "'facebook' is not in ['google', 'github', 'oidc']"),
        ("python_version=2.7", "'2.7' is not in"),
        ("author_email=nobody", "'nobody' is not an email address"),
        ("project_name=  ", "the project name must not be empty"),
        ('project_name=My "App"', "without double quotes or backslashes"),
        ("colour=blue", "unknown question 'colour'"),
        ("package_name", "--data takes key=value"),
    ],
)
def test_bad_answers_exit_2_with_a_clear_message(tmp_path, data, message):
    target = tmp_path / "app"
    result = run_cli("scaffold", "new", str(target), "--defaults", "--data", data)
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output
    assert not target.exists() or not any(target.iterdir())


def test_non_empty_target_is_refused(tmp_path):
    target = tmp_path / "app"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    result = run_cli("scaffold", "new", str(target), "--defaults")
    assert result.exit_code == 2
    assert "is not empty" in result.output and "--force" in result.output
    assert sorted(p.name for p in target.iterdir()) == ["notes.txt"]

    forced = run_cli("scaffold", "new", str(target), "--defaults", "--force")
    assert forced.exit_code == 0, forced.output
    assert (target / "notes.txt").read_text() == "mine"
    assert (target / "src/my_app/app.py").is_file()


def test_target_that_is_a_file_is_refused(tmp_path):
    target = tmp_path / "app"
    target.write_text("x")
    result = run_cli("scaffold", "new", str(target), "--defaults")
    assert result.exit_code == 2
    assert "is not a directory" in result.output


def test_empty_existing_directory_is_fine(tmp_path):
    target = tmp_path / "app"
    target.mkdir()
    scaffold(target)
    assert (target / "pyproject.toml").is_file()


def test_without_a_terminal_the_questions_need_defaults(tmp_path):
    result = run_cli("scaffold", "new", str(tmp_path / "app"))
    assert result.exit_code == 2
    assert "--defaults" in result.output


def test_next_steps_are_printed(tmp_path):
    result = run_cli("scaffold", "new", str(tmp_path / "app"), "--defaults")
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert 'pip install -e ".[dev]"' in text
    assert "just local" in text and "http://127.0.0.1:8000" in text


def test_rendering_is_offline_and_quick(tmp_path):
    # No network: the template is local and has no tasks. A second render reuses the
    # cached template history.
    scaffold(tmp_path / "first")
    started = time.perf_counter()
    scaffold(tmp_path / "second")
    assert time.perf_counter() - started < 20
    first = yaml.safe_load((tmp_path / "first/.copier-answers.yml").read_text())
    second = yaml.safe_load((tmp_path / "second/.copier-answers.yml").read_text())
    assert first["_commit"] == second["_commit"]


def test_the_template_is_found_in_the_checkout():
    assert installed_template() == REPO_ROOT / "scaffold_templates"


def test_the_wheel_ships_the_template(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-q",
            "-w",
            str(tmp_path),
            str(REPO_ROOT),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    [wheel] = tmp_path.glob("vibetuner-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    template_files = {
        p.relative_to(REPO_ROOT).as_posix()
        for p in (REPO_ROOT / "scaffold_templates").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    shipped = {f"vibetuner/{name}" for name in template_files}
    assert shipped <= names, sorted(shipped - names)


# --- update ----------------------------------------------------------------------


def make_template_repo(template_copy: Path, tag: str) -> Path:
    git(template_copy, "init", "-q")
    commit_all(template_copy, "template")
    git(template_copy, "tag", tag)
    return template_copy


def make_project(tmp_path: Path, template: Path) -> Path:
    project = scaffold(tmp_path / "project", "project_name=Field Notes", template=template)
    git(project, "init", "-q")
    commit_all(project, "new project")
    return project


def change_template(template: Path) -> None:
    justfile = template / "project/justfile.jinja"
    justfile.write_text(
        justfile.read_text() + "\n# Start the app without reload\nserve:\n    vibetuner run prod\n"
    )
    (template / "project/CHANGELOG.md.jinja").write_text("# {{ project_name }} changelog\n")


def test_update_from_a_git_template(tmp_path, template_copy):
    template = make_template_repo(template_copy, "v1.0.0")
    project = make_project(tmp_path, template)
    # The user's own change, which the update must keep.
    readme = project / "README.md"
    readme.write_text(readme.read_text() + "\nOur team notes.\n")
    commit_all(project, "our readme")

    change_template(template)
    commit_all(template, "serve recipe, changelog")
    git(template, "tag", "v1.1.0")

    result = run_cli("scaffold", "update", str(project))
    assert result.exit_code == 0, result.output
    assert "serve:" in (project / "justfile").read_text()
    assert (project / "CHANGELOG.md").read_text() == "# Field Notes changelog\n"
    assert "Our team notes." in readme.read_text()
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert answers["_commit"] == "v1.1.0"
    assert answers["project_name"] == "Field Notes"
    assert "git diff" in " ".join(result.output.split())


def test_update_from_a_plain_template_directory(tmp_path, template_copy):
    # This is how the installed template (a plain directory) is updated: each content
    # is committed and tagged in the local template history.
    project = make_project(tmp_path, template_copy)
    first = yaml.safe_load((project / ".copier-answers.yml").read_text())["_commit"]

    change_template(template_copy)
    result = run_cli("scaffold", "update", str(project), "--template", str(template_copy))
    assert result.exit_code == 0, result.output
    assert "serve:" in (project / "justfile").read_text()
    assert (project / "CHANGELOG.md").is_file()
    second = yaml.safe_load((project / ".copier-answers.yml").read_text())["_commit"]
    assert Version(second) > Version(first)

    commit_all(project, "updated")
    again = run_cli("scaffold", "update", str(project), "--template", str(template_copy))
    assert again.exit_code == 0, again.output
    assert "Already up to date" in again.output


def test_update_conflicts_are_reported(tmp_path, template_copy):
    template = make_template_repo(template_copy, "v1.0.0")
    project = make_project(tmp_path, template)
    justfile = project / "justfile"
    justfile.write_text(justfile.read_text() + "\n# our own\nserve:\n    echo ours\n")
    commit_all(project, "our recipe")
    change_template(template)
    commit_all(template, "serve recipe")
    git(template, "tag", "v1.1.0")

    result = run_cli("scaffold", "update", str(project))
    assert result.exit_code == 0, result.output
    assert "Conflicts to resolve" in result.output and "justfile" in result.output
    assert "<<<<<<<" in justfile.read_text()


def test_update_needs_a_git_repository(tmp_path, template_copy):
    project = scaffold(tmp_path / "project", template=template_copy)
    result = run_cli("scaffold", "update", str(project))
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "is not a git repository" in text
    assert "git init && git add -A && git commit" in text


def test_update_needs_a_clean_work_tree(tmp_path, template_copy):
    project = make_project(tmp_path, template_copy)
    (project / "README.md").write_text("changed\n")
    (project / "scratch.txt").write_text("new\n")
    result = run_cli("scaffold", "update", str(project))
    assert result.exit_code == 2
    assert "uncommitted changes" in result.output
    assert "README.md" in result.output and "scratch.txt" in result.output


def test_update_needs_a_generated_project(tmp_path):
    result = run_cli("scaffold", "update", str(tmp_path))
    assert result.exit_code == 2
    assert ".copier-answers.yml" in result.output


def test_update_without_template_history_explains(tmp_path, template_copy):
    project = scaffold(tmp_path / "project", template=template_copy)
    answers = project / ".copier-answers.yml"
    recorded = yaml.safe_load(answers.read_text())
    recorded.pop("_commit")
    answers.write_text(yaml.safe_dump(recorded))
    git(project, "init", "-q")
    commit_all(project, "new")
    result = run_cli("scaffold", "update", str(project), "--template", str(template_copy))
    assert result.exit_code == 2
    assert "no _commit" in " ".join(result.output.split())


def test_update_when_the_old_version_is_unknown_explains(tmp_path, template_copy, template_cache):
    project = make_project(tmp_path, template_copy)
    shutil.rmtree(template_cache / "templates")  # another machine, or a cleared cache
    change_template(template_copy)
    result = run_cli("scaffold", "update", str(project), "--template", str(template_copy))
    assert result.exit_code == 2
    assert "not in the local template history" in " ".join(result.output.split())


def test_update_with_the_installed_template(tmp_path):
    # No --template: the project records the installed template's local history.
    project = scaffold(tmp_path / "project")
    git(project, "init", "-q")
    commit_all(project, "new project")
    result = run_cli("scaffold", "update", str(project))
    assert result.exit_code == 0, result.output
    assert "Already up to date" in result.output


def test_help_lists_every_answer_key_of_the_template():
    from vibetuner.cli.scaffold import ANSWER_KEYS
    from vibetuner.cli.template import installed_template, questions

    asked = [name for name, spec in questions(installed_template()).items() if "when" not in spec]
    assert list(ANSWER_KEYS) == asked
    help_text = " ".join(run_cli("scaffold", "new", "--help").output.split())
    assert all(key in help_text for key in ANSWER_KEYS)


def test_just_dev_without_docker_points_to_just_local(tmp_path):
    from tests.scaffold.conftest import scaffold

    project = scaffold(tmp_path / "app")
    # A PATH with a shell and just, and no docker.
    tools = tmp_path / "bin"
    tools.mkdir()
    for name in ("sh", "just"):
        found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
        assert found, f"{name} is needed for this test"
        (tools / name).symlink_to(found)
    result = subprocess.run(
        [str(tools / "just"), "dev"],
        cwd=project,
        env={"PATH": str(tools), "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert "just local" in result.stderr and "Docker" in result.stderr
