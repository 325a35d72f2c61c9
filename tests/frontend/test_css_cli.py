"""``vibetuner css build``: clear errors when there is nothing (or nothing right) to build."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.scaffold.conftest import run_cli


def project(root: Path, table: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(
        f'[project]\nname = "x"\n\n[tool.vibetuner]\napp = "x.app:app"\n{table}'
    )
    return root


@pytest.fixture
def inside(monkeypatch: pytest.MonkeyPatch) -> object:
    def enter(path: Path) -> None:
        monkeypatch.chdir(path)

    return enter


def test_a_project_without_a_stylesheet_is_told_what_to_add(tmp_path: Path, inside) -> None:
    inside(project(tmp_path / "p", ""))
    result = run_cli("css", "build")
    assert result.exit_code == 2
    assert "no stylesheet to build" in result.output and "css_output" in result.output


def test_a_missing_input_file_is_named(tmp_path: Path, inside) -> None:
    inside(project(tmp_path / "p", 'css = "styles/app.css"\ncss_output = "static/app.css"\n'))
    result = run_cli("css", "build")
    assert result.exit_code == 2
    assert "app.css does not exist" in " ".join(result.output.split())


def test_an_input_without_an_output_is_refused(tmp_path: Path, inside) -> None:
    inside(project(tmp_path / "p", 'css = "styles/app.css"\n'))
    result = run_cli("css", "build")
    assert result.exit_code == 2
    assert "no css_output" in result.output


def test_a_broken_stylesheet_is_a_tailwind_error_not_a_traceback(tmp_path: Path, inside) -> None:
    root = project(tmp_path / "p", 'css = "styles/app.css"\ncss_output = "static/app.css"\n')
    (root / "styles").mkdir()
    (root / "styles" / "app.css").write_text('@import "no-such-package";\n')
    inside(root)
    result = run_cli("css", "build")
    assert result.exit_code == 1
    assert "Tailwind failed" in result.output and "Traceback" not in result.output


def test_build_writes_a_minified_file(tmp_path: Path, inside) -> None:
    root = project(tmp_path / "p", 'css = "styles/app.css"\ncss_output = "static/app.css"\n')
    (root / "styles").mkdir()
    (root / "styles" / "app.css").write_text(
        '@import "tailwindcss/utilities.css";\n@source "../templates";\n'
    )
    (root / "templates").mkdir()
    (root / "templates" / "page.html").write_text('<p class="text-center font-bold">x</p>')
    inside(root)
    result = run_cli("css", "build")
    assert result.exit_code == 0, result.output
    built = (root / "static" / "app.css").read_text()
    assert ".text-center{text-align:center}" in built
    assert "\n  " not in built  # minified
    assert os.path.getsize(root / "static" / "app.css") < 4096
