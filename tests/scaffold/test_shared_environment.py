"""The Quick start's two installs share one environment without fighting over vibetuner.

The first command installs this checkout editable and makes an app; the second installs
the app into the same environment. The app's requirement must not replace the editable
checkout with a built copy (edits to the checkout would stop taking effect, and the test
command would swap it back under a running server).
"""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
from pathlib import Path

from tests.scaffold.conftest import REPO_ROOT, python_in
from tests.scaffold.test_generated_projects import clean_env


def shared_environment(venv: Path) -> Path:
    """A fresh venv seeing this environment's packages, with this checkout editable."""
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
        check=True,
    )
    inner = subprocess.run(
        [str(python_in(venv)), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    outer = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    Path(inner, "outer-environment.pth").write_text("\n".join(sorted(outer)) + "\n")
    pip_install(venv, "--no-deps", "-e", str(REPO_ROOT))
    return Path(inner)


def pip_install(venv: Path, *args: str) -> None:
    result = subprocess.run(
        [
            sys.executable, "-m", "pip", "--python", str(python_in(venv)), "install", "-q",
            "--no-index", "--no-build-isolation", *args,
        ],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def vibetuner_source(site: Path) -> dict[str, object]:
    (info,) = site.glob("vibetuner-*.dist-info")
    return dict(json.loads((info / "direct_url.json").read_text()))


def test_installing_the_app_keeps_the_editable_checkout(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    site = shared_environment(venv)
    env = clean_env(venv)
    made = subprocess.run(
        [str(python_in(venv).parent / "vibetuner"), "scaffold", "new", "myapp", "--defaults"],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stdout + made.stderr
    project = tmp_path / "myapp"
    requirement = next(
        line
        for line in (project / "pyproject.toml").read_text().splitlines()
        if "vibetuner[" in line
    )
    assert "file://" not in requirement
    # The next steps say how a new environment gets the same checkout.
    text = " ".join(made.stdout.split())
    assert f"pip install -e {REPO_ROOT} -e" in text
    assert f"pip install -e {REPO_ROOT} -e" in (project / "README.md").read_text()

    # With its dependencies, as the Quick start does (offline: they are all here).
    pip_install(venv, "-e", f"{project}[dev]")
    assert vibetuner_source(site) == {"dir_info": {"editable": True}, "url": REPO_ROOT.as_uri()}
    where = subprocess.run(
        [str(python_in(venv)), "-c", "import vibetuner; print(vibetuner.__file__)"],
        capture_output=True, text=True, check=True, env=env, cwd=tmp_path,
    ).stdout.strip()  # fmt: skip
    assert Path(where).is_relative_to(REPO_ROOT / "src")
