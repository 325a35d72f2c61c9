"""vibetuner's imports run one way: no cycles, and nothing imports a layer above its own.

Layers, from the top: the assemblers (the command line, the pytest plugin and
``create_app`` with its default features), then the feature packages, then the core's
web layer (``vibetuner.web``), then the rest of the core (errors, settings, models, the
database, templates, translations, the feature contract and ``AppContext``).

Imports inside functions count as much as the ones at the top of a module: a
function-level import does not make a cycle go away, it only hides it. Only imports
under ``if TYPE_CHECKING:`` are left out (they never run).
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterable, Iterator
from pathlib import Path

import grimp
import pytest

# Highest first. A module belongs to the first layer one of whose names prefixes it.
ASSEMBLERS = ("vibetuner.cli", "vibetuner.testing", "vibetuner.app")
FEATURES = ("vibetuner.admin", "vibetuner.auth", "vibetuner.blobs", "vibetuner.jobs")
WEB = ("vibetuner.web",)


def layer_of(module: str, package: str = "vibetuner") -> int:
    """3 for the assemblers, 2 for the feature packages, 1 for the core's web layer and
    0 for the rest of the core."""
    for rank, names in ((3, ASSEMBLERS), (2, FEATURES), (1, WEB)):
        for name in names:
            name = package + name.removeprefix("vibetuner")
            if module == name or module.startswith(name + "."):
                return rank
    return 0


def import_graph(package: str) -> grimp.ImportGraph:
    return grimp.build_graph(
        package, include_external_packages=False, exclude_type_checking_imports=True
    )


def edges(graph: grimp.ImportGraph) -> Iterator[tuple[str, str]]:
    for importer in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            yield importer, imported


def cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """The groups of modules that import each other, directly or around a loop (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10_000))
    try:
        for module in sorted(graph.modules):
            if module not in index:
                visit(module)
    finally:
        sys.setrecursionlimit(limit)
    return sorted(found)


def upward_imports(graph: grimp.ImportGraph, package: str) -> list[str]:
    return [
        f"{importer} -> {imported}"
        for importer, imported in edges(graph)
        if layer_of(importer, package) < layer_of(imported, package)
    ]


def test_no_module_imports_itself_around_a_loop() -> None:
    assert cycles(import_graph("vibetuner")) == []


def test_no_module_imports_a_layer_above_its_own() -> None:
    assert upward_imports(import_graph("vibetuner"), "vibetuner") == []


def test_the_core_and_the_features_never_import_the_assemblers() -> None:
    graph = import_graph("vibetuner")
    for importer, imported in edges(graph):
        if layer_of(imported) == 3:
            assert layer_of(importer) == 3, f"{importer} -> {imported}"


@pytest.fixture
def tangled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterable[str]:
    """A package shaped like vibetuner with one loop hidden in a function and one
    upward import: what the checks above must catch."""
    root = tmp_path / "tangled"
    files = {
        "__init__.py": "",
        "errors.py": "def size():\n    from tangled.blobs import backend\n",
        "config.py": "from tangled import errors\n",
        "context.py": "from tangled import templating\n",
        "templating.py": "def env():\n    from tangled import context\n",
        "web/__init__.py": "",
        "web/context.py": "from tangled import context\n",
        "i18n.py": "def page():\n    from tangled.web import context\n",
        "blobs/__init__.py": "",
        "blobs/backend.py": "CHUNK = 1024\n",
    }
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "tangled"
    for name in [m for m in sys.modules if m == "tangled" or m.startswith("tangled.")]:
        del sys.modules[name]


def test_the_checks_catch_a_hidden_loop_and_an_upward_import(tangled: str) -> None:
    graph = import_graph(tangled)
    assert cycles(graph) == [["tangled.context", "tangled.templating"]]
    assert upward_imports(graph, tangled) == [
        "tangled.errors -> tangled.blobs.backend",
        "tangled.i18n -> tangled.web.context",
    ]
