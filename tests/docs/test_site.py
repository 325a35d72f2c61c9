"""The documentation site builds strictly, offline, with reference pages that match the code.

The reference pages are generated at build time (``docs/hooks/reference.py``), so these
tests build the site once into a temporary directory and look for every setting, CLI
command, public name and error code in the built pages.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import os
import pkgutil
import re
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from tests.scaffold.conftest import REPO_ROOT
from vibetuner.config import Settings

DATABASE_PAGE = REPO_ROOT / "docs" / "concepts" / "database.md"


def load_hook() -> Any:
    """The reference generator (``docs/hooks/reference.py``), loaded as MkDocs loads it."""
    spec = importlib.util.spec_from_file_location(
        "reference_hook", REPO_ROOT / "docs" / "hooks" / "reference.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


hook = load_hook()


def vibetuner_modules() -> list[str]:
    """Every module of vibetuner, imported (so every class it defines exists)."""
    import vibetuner

    names = [
        info.name
        for info in pkgutil.walk_packages(vibetuner.__path__, "vibetuner.")
        if not info.name.endswith("__main__")  # runs the command line
    ]
    for name in names:
        importlib.import_module(name)
    return names


def subclasses(kind: type) -> list[type]:
    """Every subclass of ``kind`` defined in vibetuner, however deep."""
    found, pending = [], [kind]
    while pending:
        for sub in pending.pop().__subclasses__():
            pending.append(sub)
            if sub.__module__.startswith("vibetuner."):
                found.append(sub)
    return found


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


def test_the_cli_reference_has_the_commands_of_every_built_in_feature(site):
    import typer

    page = text_of(site / "reference" / "cli" / "index.html")
    for feature in hook.built_in_features():
        commands = feature.commands()
        if commands is not None:
            group = typer.main.get_command(commands)
            names = getattr(group, "commands", {}) or {group.name: group}
            for name in names:
                assert f"vibetuner {feature.name} {name}" in page
    # How a feature's commands are written up is tested with a feature that has some
    # (tests/thirdparty/test_billing.py), since vibetuner's own add theirs to the CLI.


def test_the_reference_knows_every_built_in_feature():
    from vibetuner.features import Feature

    vibetuner_modules()
    assert {type(feature) for feature in hook.built_in_features()} == set(subclasses(Feature))


def error_rows(site: Path) -> dict[str, tuple[str, str]]:
    """The rows of the error reference's table of error classes: code -> (status, answered by)."""
    html = (site / "reference" / "errors" / "index.html").read_text(encoding="utf-8")
    html = html[: html.index('<h2 id="codes-that-routes-answer-themselves"')]
    rows = {}
    for row in re.findall(r"<tr>(.*?)</tr>", html, re.S):
        cells = [re.sub(r"<[^>]+>", "", cell) for cell in re.findall(r"<td>(.*?)</td>", row, re.S)]
        if cells:
            rows[cells[0]] = (cells[1], cells[3])
    return rows


def test_every_error_code_is_in_the_error_reference_with_the_apps_answer(site, vibetuner_settings):
    from vibetuner import create_app
    from vibetuner.errors import VibetunerError
    from vibetuner.testing import app_context
    from vibetuner.web.errors import ErrorTable

    vibetuner_modules()
    codes = {kind.code: kind for kind in subclasses(VibetunerError) if "code" in vars(kind)}
    codes[VibetunerError.code] = VibetunerError
    rows = error_rows(site)
    assert len(codes) >= 35
    assert sorted(code for code in codes if code not in rows) == []
    # The status is what an app with every built-in feature answers.
    app = create_app(settings=vibetuner_settings, features=hook.built_in_features())
    table = app_context(app).get(ErrorTable)
    wrong = {
        code: (rows[code][0], table.answer(kind).status)
        for code, kind in codes.items()
        if rows[code][0] != str(table.answer(kind).status)
    }
    assert wrong == {}
    # Rows a reader looks for: the rate limit's 429, the API tokens' 401 and 403, and the
    # feature each comes from.
    assert rows["rate_limited"] == ("429", "core")
    assert rows["invalid_token"] == ("401", "auth")
    assert rows["insufficient_scope"] == ("403", "auth")
    assert rows["realtime_unavailable"] == ("503", "realtime")
    assert rows["job_arguments_invalid"] == ("500", "none")
    page = text_of(site / "reference" / "errors" / "index.html")
    assert "blob_too_large 413 Too large." in page


async def test_codes_that_routes_answer_themselves_are_in_the_error_reference(
    site, signed_in_client
):
    html = (site / "reference" / "errors" / "index.html").read_text(encoding="utf-8")
    table = html[html.index('id="codes-that-routes-answer-themselves"') :]
    rows = {
        re.sub(r"<[^>]+>", "", cells[0]).split()[0]: re.sub(r"<[^>]+>", "", cells[1])
        for row in re.findall(r"<tr>(.*?)</tr>", table, re.S)
        if (cells := re.findall(r"<td>(.*?)</td>", row, re.S))
    }
    # Each literal `code="..."` of vibetuner's routes has its row, status included.
    found = {code: status for code, status, _ in hook.route_codes()}
    classes = {kind.code for kind in hook.error_classes()}
    expected = {code: str(status) for code, status in found.items() if code not in classes}
    assert len(expected) >= 10
    assert {code: rows.get(code) for code in expected} == expected
    # ... and says what the app answers: signing out a session the user does not have.
    answer = await signed_in_client.delete("/auth/sessions/not-one-of-mine")
    assert (answer.status_code, answer.json()["code"]) == (404, "session_not_found")
    assert rows["session_not_found"] == "404"


def test_every_public_name_is_in_the_api_reference(site):
    import vibetuner

    html = (site / "reference" / "api" / "index.html").read_text(encoding="utf-8")
    names = [f"vibetuner.{name}" for name in vibetuner.__all__ if name != "__version__"]
    for package in hook.API_PACKAGES:
        names += [f"{package}.{name}" for name in importlib.import_module(package).__all__]
    # ... and every vibetuner name the pages' code imports.
    names += sorted(hook.guide_names())
    assert len(names) >= 120
    # mkdocstrings renders each object under an anchor named by its dotted path.
    missing = [name for name in names if f'id="{hook.api_path(name)}"' not in html]
    assert missing == []
    # Sample: a lazily exported name is shown where it is defined.
    assert 'id="vibetuner.web.pages.render"' in html  # vibetuner.render_page


def test_every_feature_package_with_public_names_is_in_the_api_reference():
    from vibetuner.features import Feature

    vibetuner_modules()
    packages = {".".join(kind.__module__.split(".")[:2]) for kind in subclasses(Feature)}
    with_names = {name for name in packages if hasattr(importlib.import_module(name), "__all__")}
    assert with_names <= set(hook.API_PACKAGES)


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


def resolves(dotted: str) -> bool:
    """Whether ``vibetuner.x.y`` names something: a module, or an attribute of one."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            value: Any = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for part in parts[cut:]:
            if not hasattr(value, part):
                return False
            value = getattr(value, part)
        return True
    return False


def names_in_example(source: str) -> list[str]:
    """The vibetuner names an example uses: what it imports, and the attributes it reads
    of those (``Feature.errors``, ``vibetuner.jobs.task``)."""
    imported: dict[str, str] = {}
    used: list[str] = []
    tree = hook.parse_example(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("vibetuner"):
            for alias in node.names:
                imported[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("vibetuner"):
                    used.append(alias.name)
                    imported[alias.asname or alias.name.split(".")[0]] = (
                        alias.name if alias.asname else alias.name.split(".")[0]
                    )
    used += imported.values()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            chain, value = [], node
            while isinstance(value, ast.Attribute):
                chain.insert(0, value.attr)
                value = value.value
            if isinstance(value, ast.Name) and value.id in imported:
                used.append(".".join([imported[value.id], *chain]))
    return used


def test_every_vibetuner_name_in_the_pages_code_exists():
    pages = sorted((REPO_ROOT / "docs").rglob("*.md"))
    blocks = [(page, block) for page in pages for block in hook.python_blocks(page)]
    assert len(blocks) >= 20
    checked, missing = 0, []
    for page, block in blocks:
        for name in names_in_example(block):
            checked += 1
            if not resolves(name):
                missing.append(f"{page.relative_to(REPO_ROOT)}: {name}")
    # The files the pages include (the tutorial's, the billing feature) are run by tests.
    assert checked >= 50
    assert missing == []


def test_every_vibetuner_name_in_the_pages_text_exists():
    import vibetuner

    # `vibetuner.web.csrf.csrf_token` in a sentence; not `vibetuner.css` (a file) or
    # `vibetuner.job.runs` (a metric): only names under a module or export of vibetuner.
    known = {info.name for info in pkgutil.iter_modules(vibetuner.__path__)}
    known |= set(vibetuner.__all__)
    checked, missing = 0, []
    for page in sorted((REPO_ROOT / "docs").rglob("*.md")):
        text = page.read_text(encoding="utf-8")
        for name in re.findall(r"`(vibetuner(?:\.[A-Za-z_]\w*)+)", text):
            if name.split(".")[1] in known:
                checked += 1
                if not resolves(name):
                    missing.append(f"{page.relative_to(REPO_ROOT)}: {name}")
    assert checked >= 50
    assert missing == []


def test_every_code_block_is_closed():
    for page in sorted((REPO_ROOT / "docs").rglob("*.md")):
        fences = re.findall(r"^\s*```", page.read_text(encoding="utf-8"), re.M)
        assert len(fences) % 2 == 0, f"{page.relative_to(REPO_ROOT)}: a code block is not closed"
