"""The documentation site builds strictly, offline, with reference pages that match the code.

The reference pages are generated at build time (``docs/hooks/reference.py``), so these
tests build the site once into a temporary directory and look for every setting, CLI
command, public name and error code in the built pages.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.scaffold.conftest import REPO_ROOT
from vibetuner.config import Settings

DATABASE_PAGE = REPO_ROOT / "docs" / "concepts" / "database.md"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built as CI builds it: ``mkdocs build --strict``."""
    out = tmp_path_factory.mktemp("site")
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=REPO_ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    print(f"strict build: {time.monotonic() - started:.1f} s")
    return out


def text_of(page: Path) -> str:
    """The visible text of a built page, entities decoded, whitespace collapsed."""

    class Text(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.parts: list[str] = []

        def handle_data(self, data: str) -> None:
            self.parts.append(data)

    parser = Text()
    parser.feed(page.read_text(encoding="utf-8"))
    return " ".join(" ".join(parser.parts).split())


def test_every_setting_is_in_the_settings_reference(site):
    page = text_of(site / "reference" / "settings" / "index.html")
    missing = [name.upper() for name in Settings.model_fields if name.upper() not in page]
    assert missing == []
    # Each row has a description: a setting added without one shows up here.
    html = (site / "reference" / "settings" / "index.html").read_text(encoding="utf-8")
    empty = re.findall(
        r"<td><code>([A-Z0-9_]+)</code></td>\s*<td>[^<]*(?:<code>[^<]*</code>)?</td>\s*<td></td>",
        html,
    )
    assert empty == [], "describe these settings (a docstring under the field in config.py)"


def test_every_setting_has_a_description_in_the_code():
    # The reference reads them from the code: attribute docstrings in config.py.
    assert [name for name, field in Settings.model_fields.items() if not field.description] == []


def cli_commands() -> list[str]:
    """Every command of the CLI, as typed: ``vibetuner db migrate`` ..."""
    import typer

    from vibetuner.cli import app

    found: list[str] = []

    def walk(command, path):  # type: ignore[no-untyped-def]
        commands = getattr(command, "commands", None)
        if commands:
            for name, sub in commands.items():
                walk(sub, [*path, name])
        elif not command.hidden:
            found.append(" ".join(path))

    walk(typer.main.get_command(app), ["vibetuner"])
    return found


def test_every_cli_command_and_option_is_in_the_cli_reference(site):
    import typer

    from vibetuner.cli import app

    page = text_of(site / "reference" / "cli" / "index.html")
    commands = cli_commands()
    assert len(commands) >= 15
    assert [command for command in commands if command not in page] == []
    root = typer.main.get_command(app)
    options = {
        option
        for group in root.commands.values()  # type: ignore[attr-defined]
        for command in getattr(group, "commands", {}).values()
        for param in command.params
        if not getattr(param, "hidden", False)
        for option in getattr(param, "opts", [])
        if option.startswith("--")
    }
    assert sorted(option for option in options if option not in page) == []


def test_every_error_code_is_in_the_error_reference(site):
    from vibetuner import errors

    page = text_of(site / "reference" / "errors" / "index.html")
    codes = {
        value.code
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, errors.VibetunerError)
    }
    assert len(codes) >= 20
    assert sorted(code for code in codes if code not in page) == []
    # The status comes from the error table: a sample row reads as the table says.
    assert "blob_too_large 413 Too large." in page


def test_every_public_name_is_in_the_api_reference(site):
    import vibetuner

    html = (site / "reference" / "api" / "index.html").read_text(encoding="utf-8")
    names = [name for name in vibetuner.__all__ if name != "__version__"]
    # mkdocstrings renders each object under an anchor named by its dotted path.
    missing = [
        name
        for name in names
        if f'id="{vibetuner._EXPORTS[name]}.{vibetuner._ALIASES.get(name, name)}"' not in html
    ]
    assert missing == []


def test_the_development_database_gaps_are_generated(site):
    from vibetuner.mongo_memory import UNSUPPORTED

    # Compared without spaces: the page splits text around its code spans.
    page = "".join(
        re.sub(r"[`*]", "", text_of(site / "concepts" / "database" / "index.html")).split()
    )
    for _key, feature, instead, *_rest in UNSUPPORTED:
        for text in (feature, instead):
            assert "".join(re.sub(r"[`*]", "", text).split()) in page


def test_the_database_page_holds_the_generated_table_of_unsupported_features():
    import importlib.util
    from types import SimpleNamespace

    from vibetuner.mongo_memory import UNSUPPORTED, unsupported_table

    spec = importlib.util.spec_from_file_location(
        "reference_hook", REPO_ROOT / "docs" / "hooks" / "reference.py"
    )
    assert spec is not None and spec.loader is not None
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    source = DATABASE_PAGE.read_text(encoding="utf-8")
    assert "<!-- reference:memory-gaps -->" in source
    page = SimpleNamespace(file=SimpleNamespace(src_path="concepts/database.md"))
    assert unsupported_table() in hook.on_page_markdown(source, page, None, None)
    # Each loud refusal has its test on both backends in tests/core/test_database_gaps.py.
    refusals = {"collation", "transactions", "text", "array_sort", "array_filters", "let"}
    assert refusals | {"views", "expr"} <= {key for key, *_ in UNSUPPORTED}


class Assets(HTMLParser):
    """The URLs a page loads by itself: scripts, stylesheets, fonts, preconnects, images."""

    def __init__(self) -> None:
        super().__init__()
        self.loaded: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag in ("script", "img", "iframe", "source") and values.get("src"):
            self.loaded.append(values["src"] or "")
        if tag == "link" and values.get("href"):
            rel = (values.get("rel") or "").split()
            if {"stylesheet", "preload", "preconnect", "dns-prefetch", "icon"} & set(rel):
                self.loaded.append(values["href"] or "")


def test_the_site_loads_nothing_from_other_sites(site):
    remote = re.compile(r"^(https?:)?//", re.I)
    offenders = []
    for page in site.rglob("*.html"):
        parser = Assets()
        parser.feed(page.read_text(encoding="utf-8"))
        offenders += [
            f"{page.relative_to(site)}: {url}" for url in parser.loaded if remote.match(url)
        ]
    for sheet in site.rglob("*.css"):
        for url in re.findall(r"url\(\s*['\"]?([^'\")]+)", sheet.read_text(encoding="utf-8")):
            if remote.match(url):
                offenders.append(f"{sheet.relative_to(site)}: {url}")
        if "@import" in sheet.read_text(encoding="utf-8"):
            offenders.append(f"{sheet.relative_to(site)}: @import")
    assert offenders == []
    assert "fonts.googleapis" not in "".join(p.read_text() for p in site.rglob("*.html"))


def test_hooks_and_tutorial_code_are_not_pages(site):
    assert not (site / "hooks").exists()
    assert not (site / "tutorial" / "code").exists()


def python_blocks() -> list[tuple[str, str]]:
    """The Python code blocks of the pages outside the tutorial (which has its own test)."""
    blocks = []
    for page in sorted((REPO_ROOT / "docs").rglob("*.md")):
        if "tutorial" in page.parts:
            continue
        text = page.read_text(encoding="utf-8")
        for body in re.findall(r"^```python\n(.*?)^```", text, re.S | re.M):
            blocks.append((page.relative_to(REPO_ROOT).as_posix(), body))
    return blocks


def test_the_pages_python_parses_and_imports_what_exists():
    import ast
    import importlib

    blocks = python_blocks()
    assert len(blocks) >= 8
    for page, body in blocks:
        # Examples may await at top level, as in a route's body.
        flags = ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
        tree = compile(body, page, "exec", flags=flags)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("vibetuner"):
                module = importlib.import_module(node.module or "")
                for alias in node.names:
                    assert hasattr(module, alias.name), f"{page}: {node.module}.{alias.name}"


def test_every_code_block_is_closed():
    for page in sorted((REPO_ROOT / "docs").rglob("*.md")):
        fences = re.findall(r"^\s*```", page.read_text(encoding="utf-8"), re.M)
        assert len(fences) % 2 == 0, f"{page.relative_to(REPO_ROOT)}: a code block is not closed"
