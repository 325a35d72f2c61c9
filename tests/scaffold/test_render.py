"""`vibetuner scaffold new`: what each answer produces, and that the files are valid."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from tests.scaffold.conftest import REPO_ROOT, scaffold
from vibetuner.cli.requirement import framework_pin
from vibetuner.config import Settings

SETTING_NAMES = {name.upper() for name in Settings.model_fields}
ENV_LINE = re.compile(r"^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$")

EXPECTED_FILES = {
    ".copier-answers.yml",
    ".env.example",
    ".github/workflows/ci.yml",
    ".gitignore",
    "Dockerfile",
    "README.md",
    "docker-compose.yml",
    "justfile",
    "migrations/README.md",
    "pyproject.toml",
    "src/{pkg}/__init__.py",
    "src/{pkg}/app.py",
    "src/{pkg}/models.py",
    "src/{pkg}/notes.py",
    "src/{pkg}/jobs.py",
    "src/{pkg}/pages.py",
    "src/{pkg}/settings.py",
    "src/{pkg}/web.py",
    "src/{pkg}/worker.py",
    "src/{pkg}/templates/base.html",
    "src/{pkg}/templates/home.html",
    "src/{pkg}/templates/notes/index.html",
    "src/{pkg}/templates/notes/detail.html",
    "src/{pkg}/templates/notes/card.html",
    "src/{pkg}/templates/notes/edit.html",
    "src/{pkg}/styles/app.css",
    "src/{pkg}/static/.gitkeep",
    "src/{pkg}/locales/messages.pot",
    "src/{pkg}/locales/es/LC_MESSAGES/messages.po",
    "src/{pkg}/locales/es/LC_MESSAGES/messages.mo",
    "src/{pkg}/locales/de/LC_MESSAGES/messages.po",
    "src/{pkg}/locales/de/LC_MESSAGES/messages.mo",
    "tests/test_translations.py",
    "tests/test_admin.py",
    "tests/test_jobs.py",
    "tests/test_notes.py",
    "tests/test_pages.py",
    "tests/test_settings.py",
    "tests/test_limits.py",
}


def files_of(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def env_example(root: Path) -> dict[str, tuple[bool, str]]:
    """KEY -> (active, value) for every setting line of .env.example."""
    found: dict[str, tuple[bool, str]] = {}
    for line in (root / ".env.example").read_text().splitlines():
        match = ENV_LINE.match(line.strip())
        if match:
            key = match.group(2)
            assert key not in found or not found[key][0], f"{key} listed twice"
            found.setdefault(key, (match.group(1) is None, match.group(3)))
    return found


def compose(root: Path) -> dict:
    return yaml.safe_load((root / "docker-compose.yml").read_text())


def test_defaults(tmp_path):
    root = scaffold(tmp_path / "app")
    assert files_of(root) == {f.format(pkg="my_app") for f in EXPECTED_FILES}

    pyproject = tomllib.loads((root / "pyproject.toml").read_text())
    assert pyproject["project"]["name"] == "my-app"
    # Exactly the vibetuner that generated it, never the unrelated project of that name.
    assert pyproject["project"]["dependencies"] == [
        f"vibetuner[css,memory] {framework_pin()}",
        "pillow>=11",
    ]
    assert pyproject["tool"]["vibetuner"] == {
        "app": "my_app.app:app",
        "models": "my_app.models:MODELS",
        "worker": "my_app.worker:build_context",
        "migrations": "migrations",
        "css": "src/my_app/styles/app.css",
        "css_output": "src/my_app/static/app.css",
        "locales": "src/my_app/locales",
    }
    assert pyproject["tool"]["pytest"]["ini_options"]["vibetuner_app"] == "my_app.app:build_app"

    answers = yaml.safe_load((root / ".copier-answers.yml").read_text())
    assert answers["package_name"] == "my_app"
    assert answers["blob_storage"] == "local"
    assert answers["oauth_providers"] == []
    assert answers["_commit"].startswith("v")

    app_py = (root / "src/my_app/app.py").read_text()
    assert "def build_app(settings: Settings | None = None)" in app_py
    assert "app = build_app()" in app_py
    models = (root / "src/my_app/models.py").read_text()
    assert "TimeStampMixin" in models and "Link[UserModel]" in models


def test_every_setting_is_listed_in_env_example(tmp_path):
    root = scaffold(tmp_path / "app")
    listed = env_example(root)
    assert set(listed) == SETTING_NAMES
    # The active lines are valid settings as they stand.
    settings = Settings(_env_file=root / ".env.example")
    assert settings.environment == "development"
    assert settings.mongodb_url is None  # in memory unless MONGODB_URL is set
    assert settings.blob_backend == "local"


@pytest.mark.parametrize("python_version", ["3.11", "3.12", "3.13"])
def test_python_version(tmp_path, python_version):
    root = scaffold(tmp_path / "app", f"python_version={python_version}")
    pyproject = tomllib.loads((root / "pyproject.toml").read_text())
    assert pyproject["project"]["requires-python"] == f">={python_version}"
    assert pyproject["tool"]["ruff"]["target-version"] == "py" + python_version.replace(".", "")
    assert f"FROM python:{python_version}-slim" in (root / "Dockerfile").read_text()
    ci = yaml.safe_load((root / ".github/workflows/ci.yml").read_text())
    setup = [
        s
        for s in ci["jobs"]["test"]["steps"]
        if s.get("uses", "").startswith("actions/setup-python")
    ]
    assert setup[0]["with"]["python-version"] == python_version


def test_local_blob_storage_has_no_minio(tmp_path):
    root = scaffold(tmp_path / "app", "blob_storage=local")
    stack = compose(root)
    assert set(stack["services"]) == {"mongo", "migrate", "app"}
    assert stack["services"]["app"]["environment"]["BLOB_BACKEND"] == "local"


def test_s3_blob_storage(tmp_path):
    root = scaffold(tmp_path / "app", "blob_storage=s3", "package_name=files_app")
    pyproject = tomllib.loads((root / "pyproject.toml").read_text())
    assert pyproject["project"]["dependencies"] == [
        f"vibetuner[css,memory,s3] {framework_pin()}",
        "pillow>=11",
    ]

    stack = compose(root)
    assert set(stack["services"]) == {"mongo", "minio", "migrate", "app"}
    minio = stack["services"]["minio"]
    assert "healthcheck" in minio and "minio-data" in stack["volumes"]
    app_env = stack["services"]["app"]["environment"]
    assert app_env["BLOB_BACKEND"] == "s3"
    assert app_env["S3_ENDPOINT_URL"] == "http://minio:9000"
    assert stack["services"]["app"]["depends_on"]["minio"] == {"condition": "service_healthy"}
    # The S3 values to use outside Docker are documented with the same names.
    listed = env_example(root)
    assert listed["S3_ENDPOINT_URL"] == (False, "http://localhost:9000")
    assert set(listed) == SETTING_NAMES


@pytest.mark.parametrize("blob_storage", ["local", "s3"])
def test_compose_stack_structure(tmp_path, blob_storage):
    root = scaffold(tmp_path / "app", f"blob_storage={blob_storage}")
    stack = compose(root)
    mongo = stack["services"]["mongo"]
    assert mongo["image"].startswith("mongo:")
    assert mongo["healthcheck"]["test"][0] == "CMD"
    assert "mongo-data:/data/db" in mongo["volumes"]
    assert "mongo-data" in stack["volumes"]

    app = stack["services"]["app"]
    assert app["build"] == "."
    assert app["command"][:3] == ["vibetuner", "run", "dev"]
    assert app["depends_on"]["mongo"] == {"condition": "service_healthy"}
    assert app["environment"]["MONGODB_URL"] == "mongodb://mongo:27017/my_app"
    # Every variable the app gets is a vibetuner setting (no typo can slip in).
    assert set(app["environment"]) <= SETTING_NAMES
    assert app["env_file"] == [{"path": ".env", "required": False}]
    for service in stack["services"].values():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), "development ports stay on loopback"
        for volume in service.get("volumes", []):
            name = volume.split(":", 1)[0]
            assert name.startswith("./") or name in stack["volumes"]


def test_dockerfile_uses_setting_names_and_serves_prod(tmp_path):
    root = scaffold(tmp_path / "app")
    dockerfile = (root / "Dockerfile").read_text()
    env_names = set(
        re.findall(
            r"\b([A-Z_]+)=",
            "\n".join(
                line for line in dockerfile.splitlines() if not line.lstrip().startswith("#")
            ),
        )
    )
    settings_env = env_names - {
        "PYTHONDONTWRITEBYTECODE",
        "PYTHONUNBUFFERED",
        "PIP_NO_CACHE_DIR",
        "PIP_DISABLE_PIP_VERSION_CHECK",
    }
    assert settings_env and settings_env <= SETTING_NAMES
    assert '"vibetuner", "run", "prod"' in dockerfile
    instructions = {
        line.split()[0] for line in dockerfile.splitlines() if line and line[0].isupper()
    }
    assert instructions <= {
        "FROM",
        "ENV",
        "WORKDIR",
        "RUN",
        "COPY",
        "USER",
        "EXPOSE",
        "HEALTHCHECK",
        "CMD",
    }


@pytest.mark.parametrize("provider", ["google", "github", "oidc"])
def test_each_oauth_provider(tmp_path, provider):
    root = scaffold(tmp_path / "app", f"oauth_providers={provider}")
    answers = yaml.safe_load((root / ".copier-answers.yml").read_text())
    assert answers["oauth_providers"] == [provider]
    env_text = (root / ".env.example").read_text()
    callback = f"/auth/oauth/{'NAME' if provider == 'oidc' else provider}/callback"
    assert callback in env_text
    assert set(env_example(root)) == SETTING_NAMES
    readme = (root / "README.md").read_text()
    assert "Sign-in providers" in readme
    others = {"google", "github", "oidc"} - {provider}
    for other in others:
        assert f"/auth/oauth/{'NAME' if other == 'oidc' else other}/callback" not in env_text


def test_no_oauth_provider(tmp_path):
    root = scaffold(tmp_path / "app", "oauth_providers=none")
    assert "/callback" not in (root / ".env.example").read_text()
    assert "Sign-in providers" not in (root / "README.md").read_text()


@pytest.mark.parametrize("value", ["github,google", "[github, google]", " google , github "])
def test_several_providers(tmp_path, value):
    root = scaffold(tmp_path / "app", f"oauth_providers={value}")
    answers = yaml.safe_load((root / ".copier-answers.yml").read_text())
    assert answers["oauth_providers"] == ["google", "github"]


def test_ci_workflow_runs_the_tests(tmp_path):
    root = scaffold(tmp_path / "app")
    ci = yaml.safe_load((root / ".github/workflows/ci.yml").read_text())
    steps = ci["jobs"]["test"]["steps"]
    commands = "\n".join(step.get("run", "") for step in steps)
    assert 'pip install -e ".[dev]"' in commands
    assert "python -m pytest" in commands
    assert ci["jobs"]["test"]["services"]["mongo"]["image"].startswith("mongo:")
    assert ci["jobs"]["test"]["env"]["TEST_MONGODB_URL"].startswith("mongodb://")


@pytest.mark.parametrize("blob_storage", ["local", "s3"])
def test_justfile_recipes(tmp_path, blob_storage):
    root = scaffold(tmp_path / "app", f"blob_storage={blob_storage}")
    just = Path(sys.executable).parent / "just"
    result = subprocess.run(
        [str(just) if just.exists() else "just", "--justfile", str(root / "justfile"), "--summary"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert {"dev", "local", "test", "lint"} <= set(result.stdout.split())
    dry = subprocess.run(
        [
            str(just) if just.exists() else "just",
            "--justfile",
            str(root / "justfile"),
            "--dry-run",
            "test",
            "-x",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert "python -m pytest -x" in dry.stderr


@pytest.mark.parametrize(
    "data",
    [
        (),
        ("blob_storage=s3", "oauth_providers=google,github,oidc", "project_name=Big App"),
        ("python_version=3.13", 'description=Quotes "inside" and a backslash \\'),
    ],
)
def test_generated_code_passes_lint(tmp_path, data):
    root = scaffold(tmp_path / "app", *data)
    tomllib.loads((root / "pyproject.toml").read_text())
    for args in (["check", "."], ["format", "--check", "."]):
        result = subprocess.run(
            [sys.executable, "-m", "ruff", *args],
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_project_name_gives_package_name(tmp_path):
    root = scaffold(tmp_path / "app", "project_name=42 Field Notes!")
    answers = yaml.safe_load((root / ".copier-answers.yml").read_text())
    assert answers["package_name"] == "field_notes"
    assert (root / "src/field_notes/app.py").is_file()
    assert 'APP_NAME="42 Field Notes!"' in (root / ".env.example").read_text()
    assert Settings(_env_file=root / ".env.example").app_name == "42 Field Notes!"


def test_the_pin_points_at_the_checkout_that_generated_the_project():
    from packaging.requirements import Requirement

    pin = framework_pin()
    requirement = Requirement(f"vibetuner {pin}")
    # The test run installs this checkout editable: the project depends on its path.
    assert requirement.url is not None and requirement.url.startswith("file://")
    assert Path(requirement.url.removeprefix("file://")).resolve() == REPO_ROOT.resolve()


def test_the_stack_migrates_first_and_checks_readiness_and_worker_liveness(tmp_path):
    root = scaffold(tmp_path / "app", "jobs=redis")
    services = compose(root)["services"]
    assert services["migrate"]["command"] == ["vibetuner", "db", "migrate"]
    for role in ("app", "worker"):
        assert services[role]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }
    assert "/health/ready" in " ".join(services["app"]["healthcheck"]["test"])
    assert services["worker"]["healthcheck"]["test"] == ["CMD", "vibetuner", "jobs", "health"]
    assert set(services["migrate"]["environment"]) <= SETTING_NAMES
    dockerfile = (root / "Dockerfile").read_text()
    (healthcheck,) = [line for line in dockerfile.splitlines() if "urlopen" in line]
    assert "/health/ready" in healthcheck
