"""MkDocs hook: the reference pages are written from the code at build time.

A page holds a marker such as ``<!-- reference:settings -->`` and this hook replaces it
with Markdown made from vibetuner itself, so a setting, a command or an error added in
the code shows up in the site without anyone editing the docs:

- ``settings``: every field of ``vibetuner.config.Settings``, grouped by the section
  comments of its class, with its environment variable, default and description, then
  each built-in feature's own settings section;
- ``cli``: every command of the Typer app, walked through Click's command tree, then
  the commands of the built-in features (``vibetuner <feature> ...``);
- ``api``: one mkdocstrings block per public name of ``vibetuner.__all__``, of each
  feature package's ``__all__`` (``API_PACKAGES``), and of every other vibetuner name
  the pages' code imports;
- ``errors``: every ``VibetunerError`` of vibetuner with its code and the HTTP status
  the error table (``vibetuner.web.errors``, with every built-in feature's entries)
  gives it;
- ``route-codes``: the codes routes answer themselves, found in vibetuner's source;
- ``memory-gaps``: what the in-memory development database does not do.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import textwrap
from pathlib import Path
from typing import Any

MARKER = re.compile(r"<!-- reference:([a-z-]+) -->")


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Replace each reference marker of a page with its generated Markdown."""

    def generate(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in GENERATORS:
            raise ValueError(f"{page.file.src_path}: unknown reference marker {name!r}")
        return GENERATORS[name]()

    return MARKER.sub(generate, markdown)


def rst(text: str) -> str:
    """Docstring text with reStructuredText literals (````x````) as Markdown code."""
    return text.replace("``", "`")


def cell(text: str) -> str:
    """Text that fits in one Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


# --- settings ------------------------------------------------------------------------


def settings_markdown() -> str:
    """One table per section of ``Settings``, then one per built-in feature's own
    section (``Feature.settings_class``): variable, default, description."""
    from vibetuner.config import Settings

    out = settings_tables(Settings)
    out += nested_models_markdown(Settings)
    out += feature_settings_markdown(built_in_features())
    return "\n".join(out)


def built_in_features() -> list[Any]:
    """vibetuner's own features, as an app lists them (a test checks none is missing)."""
    from vibetuner import AdminFeature, AuthFeature, BlobsFeature, JobsFeature, RateLimitFeature
    from vibetuner.cache import CacheFeature
    from vibetuner.observability.feature import ObservabilityFeature
    from vibetuner.realtime import RealtimeFeature

    return [
        RateLimitFeature(),
        AuthFeature(),
        BlobsFeature(),
        JobsFeature([]),
        AdminFeature(),
        CacheFeature(),
        RealtimeFeature(),
        ObservabilityFeature(),
    ]


def feature_settings_markdown(features: list[Any]) -> list[str]:
    """A table for each feature that has a settings section, its variables prefixed."""
    out: list[str] = []
    for feature in features:
        kind = feature.settings_class
        if kind is not None:
            prefix = str(kind.model_config.get("env_prefix") or "").upper()
            out += settings_tables(kind, prefix, heading=f"The {feature.name} feature")
    return out


def settings_tables(settings: Any, prefix: str = "", heading: str = "") -> list[str]:
    """The settings class's tables, one per section (one in all under ``heading``)."""
    sections = settings_sections(settings)
    comments = field_comments(settings)
    if heading:
        sections = [(heading, [name for _, names in sections for name in names])]
    out = []
    for title, names in sections:
        out.append(f"### {title[:1].upper()}{title[1:]}\n")
        out.append("| variable | default | description |\n|---|---|---|")
        for name in names:
            field = settings.model_fields[name]
            description = field.description or comments.get(name) or ""
            variable = f"{prefix}{name.upper()}"
            out.append(f"| `{variable}` | {cell(default_text(field))} | {cell(description)} |")
        out.append("")
    return out


def nested_models_markdown(settings: Any) -> list[str]:
    """A table of keys for each setting whose value holds objects (``OIDC_PROVIDERS``)."""
    import typing

    from pydantic import BaseModel

    def models_in(annotation: Any) -> list[type[BaseModel]]:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return [annotation]
        return [model for arg in typing.get_args(annotation) for model in models_in(arg)]

    out = []
    for name, field in settings.model_fields.items():
        for model in models_in(field.annotation):
            doc = rst(inspect.cleandoc(model.__doc__ or ""))
            out.append(f"### The objects of `{name.upper()}`\n")
            out.append(f"{doc} Each is a JSON object with these keys:\n")
            out.append("| key | default |\n|---|---|")
            for key, inner in model.model_fields.items():
                out.append(f"| `{key}` | {cell(default_text(inner))} |")
            out.append("")
    return out


def settings_sections(settings: type) -> list[tuple[str, list[str]]]:
    """The fields of the settings class grouped under its ``# --- section ---`` comments."""
    source_lines, _ = inspect.getsourcelines(settings)
    fields = set(settings.model_fields)
    sections: list[tuple[str, list[str]]] = [("general", [])]
    seen: set[str] = set()
    for line in source_lines:
        stripped = line.strip()
        heading = re.match(r"#\s*---\s*(.+?)\s*-{3,}\s*$", stripped)
        if heading:
            sections.append((heading.group(1), []))
            continue
        assigned = re.match(r"([a-z_][a-z0-9_]*)\s*:", stripped)
        if assigned and assigned.group(1) in fields and assigned.group(1) not in seen:
            sections[-1][1].append(assigned.group(1))
            seen.add(assigned.group(1))
    # Fields inherited or defined in ways the scan above does not see still get a row.
    rest = [name for name in settings.model_fields if name not in seen]
    if rest:
        sections.append(("other", rest))
    return [(title, names) for title, names in sections if names]


def field_comments(settings: type) -> dict[str, str]:
    """The comment lines written directly above each field in the class's source."""
    source = textwrap.dedent(inspect.getsource(settings))
    lines = source.splitlines()
    comments: dict[str, str] = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            above = []
            index = node.lineno - 2
            while index >= 0 and lines[index].strip().startswith("#"):
                text = lines[index].strip().lstrip("#").strip()
                if text.startswith("---"):
                    break
                above.insert(0, text)
                index -= 1
            if above:
                comments[node.target.id] = " ".join(above)
    return comments


def default_text(field: Any) -> str:
    """The default of a settings field as a reader writes it in the environment."""
    from pydantic import SecretStr
    from pydantic_core import PydanticUndefined

    if field.default_factory is not None:
        value = field.default_factory()
    elif field.default is PydanticUndefined:
        return "required"
    else:
        value = field.default
    if value is None:
        return "unset"
    if isinstance(value, SecretStr):
        return "(secret)"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, list):
        return f"`{','.join(str(item) for item in value)}`" if value else "empty"
    if isinstance(value, Path):
        return f"`{value.as_posix()}`"
    return f"`{value}`" if str(value) != "" else "empty"


# --- command line ----------------------------------------------------------------------


def cli_markdown() -> str:
    """Every command of ``vibetuner``, then those the built-in features add."""
    import typer

    from vibetuner.cli import app

    out = command_markdown(typer.main.get_command(app), ["vibetuner"])
    out += feature_commands_markdown(built_in_features())
    return "\n".join(out)


def feature_commands_markdown(features: list[Any]) -> list[str]:
    """The commands of each feature that has some (``Feature.commands``), as a project
    runs them: ``vibetuner <feature name> ...``."""
    import typer

    out: list[str] = []
    for feature in features:
        commands = feature.commands()
        if commands is not None:
            # Added as the CLI adds it (vibetuner.cli.add_feature_commands), so the tree
            # is the one a project runs, even for a Typer of one command.
            cli = typer.Typer()
            cli.add_typer(commands, name=feature.name)
            out += command_markdown(typer.main.get_command(cli), ["vibetuner"])
    return out


def command_markdown(root: Any, prefix: list[str]) -> list[str]:
    """Usage, help and options of ``root`` and every command under it, from Click's tree.

    Typer may carry its own copy of Click, so groups and arguments are recognised by
    what they have (``commands``, ``param_type_name``), not by Click's classes.
    """
    out: list[str] = []

    def walk(command: Any, path: list[str]) -> None:
        commands = getattr(command, "commands", None)
        if commands:
            if len(path) > 1:
                out.append(f"## `{' '.join(path)}`\n")
                if command.help:
                    out.append(rst(inspect.cleandoc(command.help)) + "\n")
            for name in commands:  # in the order the CLI registers them
                walk(commands[name], [*path, name])
            return
        if command.hidden:
            return
        name = " ".join(path)
        context = command.context_class(command, info_name=name)
        usage = " ".join(command.collect_usage_pieces(context))
        # Typer writes a required argument as {name} and an optional one as [name].
        usage = re.sub(r"\{([a-z_]+)\}", lambda m: m.group(1).upper(), usage)
        usage = re.sub(r"\[([a-z_]+)\]", lambda m: f"[{m.group(1).upper()}]", usage)
        out.append(f"### `{name}`\n")
        out.append(f"```text\n{name} {usage}\n```\n")
        help_text = rst(inspect.cleandoc(command.help or "").replace("\b\n", ""))
        if help_text:
            out.append(help_text + "\n")
        rows = []
        for param in command.params:
            record = param.get_help_record(context)
            if record is not None:
                rows.append(record)
        if rows:
            out.append("| argument or option | meaning |\n|---|---|")
            for names, text in rows:
                out.append(f"| `{cell(names)}` | {cell(text)} |")
            out.append("")

    walk(root, prefix)
    return out


# --- Python API ------------------------------------------------------------------------


# The feature packages an app imports from, each documented from its ``__all__``.
API_PACKAGES = (
    "vibetuner.jobs",
    "vibetuner.ratelimit",
    "vibetuner.cache",
    "vibetuner.realtime",
    "vibetuner.admin",
    "vibetuner.models",
    "vibetuner.observability",
)
DOCS = Path(__file__).resolve().parents[1]


def api_markdown() -> str:
    """A mkdocstrings block for each public name, at the module that defines it: the
    names of ``vibetuner``, those of each feature package, then every other vibetuner
    name the pages' code imports (so what a page shows is documented here)."""
    import vibetuner

    out = ["## `vibetuner`\n"]
    shown: set[str] = set()
    for name in vibetuner.__all__:
        if name != "__version__":
            out += api_block("vibetuner", name, shown)
    for package in API_PACKAGES:
        module = importlib.import_module(package)
        out.append(f"## `{package}`\n")
        first = rst(inspect.cleandoc(module.__doc__ or "").split("\n\n")[0])
        if first:
            out.append(first + "\n")
        for name in module.__all__:
            out += api_block(package, name, shown)
    rest = [dotted for dotted in sorted(guide_names()) if api_path(dotted) not in shown]
    if rest:
        out.append("## Other names the guides use\n")
        for dotted in rest:
            module, _, name = dotted.rpartition(".")
            out += api_block(module, name, shown)
    return "\n".join(out)


def api_path(dotted: str) -> str:
    """Where mkdocstrings finds ``dotted``: a class or function at the module defining it,
    anything else (a constant, a module) where it is imported from."""
    module, _, name = dotted.rpartition(".")
    try:
        value = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        value = importlib.import_module(dotted)
    defined_in = getattr(value, "__module__", None)
    qualname = getattr(value, "__qualname__", None)
    if (
        (inspect.isclass(value) or inspect.isfunction(value))
        and isinstance(defined_in, str)
        and defined_in.startswith("vibetuner")
        and qualname
        and "<" not in qualname
    ):
        return f"{defined_in}.{qualname}"
    # A lazily loaded name (``vibetuner``'s own): at the module its table names.
    package = importlib.import_module(module)
    exports = getattr(package, "_EXPORTS", {})
    if name in exports:
        return f"{exports[name]}.{getattr(package, '_ALIASES', {}).get(name, name)}"
    return dotted


def api_block(module: str, name: str, shown: set[str]) -> list[str]:
    """The mkdocstrings block of ``module.name`` (a line pointing up when already shown)."""
    path = api_path(f"{module}.{name}")
    if path in shown:
        return [f"`from {module} import {name}` is [`{path}`](#{path}), above.\n"]
    shown.add(path)
    note = [] if path == f"{module}.{name}" else [f"`from {module} import {name}`:\n"]
    return [*note, f"::: {path}\n"]


def guide_names() -> set[str]:
    """Every ``vibetuner...`` name the pages' Python imports, in their own code blocks
    and in the Python files they include: ``from vibetuner.x import y`` gives
    ``vibetuner.x.y``."""
    found: set[str] = set()
    pages = sorted(DOCS.rglob("*.md"))
    sources = [block for page in pages for block in python_blocks(page)]
    sources += [path.read_text(encoding="utf-8") for path in included_python_files(pages)]
    for source in sources:
        for node in ast.walk(parse_example(source)):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("vibetuner"):
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


# Where ``--8<-- "path"`` looks (mkdocs.yml's snippets base_path).
SNIPPET_BASES = (DOCS / "tutorial" / "code", DOCS.parent)
INCLUDE = re.compile(r'^\s*--8<-- "([^":]+)', re.M)


def included_python_files(pages: list[Path]) -> list[Path]:
    """The Python files the pages include (``--8<-- "path:section"``)."""
    found: set[Path] = set()
    for page in pages:
        for name in INCLUDE.findall(page.read_text(encoding="utf-8")):
            for base in SNIPPET_BASES:
                if name.endswith(".py") and (base / name).is_file():
                    found.add(base / name)
                    break
    return sorted(found)


def python_blocks(page: Path) -> list[str]:
    """The Python code blocks of a Markdown page (an included file is not one)."""
    text = page.read_text(encoding="utf-8")
    blocks = re.findall(r"^( *)```python[^\n]*\n(.*?)^\1```", text, re.S | re.M)
    return [textwrap.dedent(body) for _, body in blocks if not body.lstrip().startswith("--8<--")]


def parse_example(source: str) -> ast.AST:
    """Parse an example; it may await at top level, as in a route's body."""
    flags = ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    tree: ast.AST = compile(source, "<example>", "exec", flags=flags)
    return tree


# Sphinx roles the docstrings use (``:func:`x```) that mkdocstrings leaves as text.
SPHINX_ROLE = re.compile(r":(?:func|class|meth|attr|mod|data|exc|obj):(?=<code>)")


def on_page_content(html: str, page: Any, config: Any, files: Any) -> str:
    """Drop the Sphinx role prefixes in front of the code spans of the API page."""
    return SPHINX_ROLE.sub("", html)


# --- errors ----------------------------------------------------------------------------


def errors_markdown() -> str:
    """Every error class with its code, status and meaning, from the error table of an
    app with every built-in feature, and which part of vibetuner answers it."""
    from vibetuner import errors

    table, owners = error_table()
    out = ["| code | status | meaning | answered by |", "|---|---|---|---|"]
    for kind in error_classes():
        status, title, _message = table.answer(kind)
        doc = rst(inspect.cleandoc(kind.__doc__ or "").split("\n\n")[0])
        parents = [
            f"`{base.__name__}`"
            for base in kind.__bases__
            if issubclass(base, errors.VibetunerError) and base is not errors.VibetunerError
        ]
        raised = f"`{kind.__module__}.{kind.__name__}`"
        raised += f", a kind of {', '.join(parents)}" if parents else ""
        meaning = f"**{title}.** {doc} ({raised})"
        owner = next((owners[base] for base in kind.__mro__ if base in owners), "none")
        out.append(f"| `{kind.code}` | {status} | {cell(meaning)} | {owner} |")
    return "\n".join(out) + "\n"


def error_table() -> tuple[Any, dict[type, str]]:
    """The error table of an app with every built-in feature, and who added each entry
    (``core``, or a feature's name)."""
    from vibetuner.web.errors import CORE_ERRORS, ErrorTable

    table = ErrorTable()
    owners: dict[type, str] = dict.fromkeys(CORE_ERRORS, "core")
    for feature in built_in_features():
        entries = feature.errors()
        table.add(entries, owner=feature.name)
        owners.update(dict.fromkeys(entries, feature.name))
    return table, owners


def error_classes() -> list[type]:
    """Every ``VibetunerError`` class of vibetuner with a code of its own, by code: those
    of ``vibetuner.errors``, of the public packages and of the built-in features' tables
    (a subclass that keeps its parent's code, such as ``RateLimited``, is its parent's row).
    """
    from vibetuner import errors

    for package in API_PACKAGES:
        importlib.import_module(package)
    error_table()  # imports what the features' tables name

    found: dict[str, type] = {}
    pending = [errors.VibetunerError]
    while pending:
        kind = pending.pop()
        pending.extend(kind.__subclasses__())
        if kind.__module__.startswith("vibetuner") and "code" in vars(kind):
            found.setdefault(kind.code, kind)
    return [found[code] for code in sorted(found)]


def route_codes_markdown() -> str:
    """The codes that routes answer themselves (not through the error table), found in
    vibetuner's source: a ``code="..."`` argument or a ``{"code": "..."}`` body, with the
    status given in the same call."""
    classes = {kind.code for kind in error_classes()}
    where: dict[tuple[str, int | None], list[str]] = {}
    for code, status, module in sorted(route_codes()):
        if code not in classes:
            where.setdefault((code, status), []).append(f"`{module}`")
    out = ["| code | status | answered in |", "|---|---|---|"]
    for (code, status), modules in sorted(where.items()):
        shown = f"`{code}`"
        if code == "passkey_*":
            shown += " (one per `reason` of `passkey_refused`)"
        out.append(f"| {shown} | {status or ''} | {', '.join(modules)} |")
    return "\n".join(out) + "\n"


def route_codes() -> set[tuple[str, int | None, str]]:
    """``(code, status, module)`` for each literal code vibetuner's routes answer."""
    source = DOCS.parent / "src" / "vibetuner"
    found: set[tuple[str, int | None, str]] = set()
    for path in sorted(source.rglob("*.py")):
        module = ".".join(path.relative_to(source.parent).with_suffix("").parts)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                named = [k.value for k in node.keywords if k.arg == "code"]
                # _error(status, code, message): the passkey routes' JSON answers
                if isinstance(node.func, ast.Name) and node.func.id == "_error":
                    named += node.args[1:2]
                for value in named:
                    code = code_text(value)
                    if code:
                        found.add((code, status_in(node), module))
            elif isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values, strict=True):
                    code = code_text(value)
                    if isinstance(key, ast.Constant) and key.value == "code" and code:
                        call = parents.get(node)
                        status = status_in(call) if isinstance(call, ast.Call) else None
                        found.add((code, status, module))
    return found


def code_text(node: ast.AST) -> str | None:
    """A code written in the source: ``"not_linked"``, or ``f"passkey_{...}"`` as
    ``passkey_*``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr) and node.values:
        first = node.values[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            return first.value + "*"
    return None


def status_in(call: ast.Call) -> int | None:
    """The HTTP status a call gives as a number (positional, or ``status_code=``)."""
    values = [*call.args, *(k.value for k in call.keywords if k.arg in ("status_code", "status"))]
    for value in values:
        if isinstance(value, ast.Constant) and type(value.value) is int:
            if 100 <= value.value < 600:
                return value.value
    return None


# --- the development database ------------------------------------------------------------


def memory_gaps_markdown() -> str:
    """The table of ``vibetuner.mongo_memory.UNSUPPORTED``, shown on the database page."""
    from vibetuner.mongo_memory import unsupported_table

    return str(unsupported_table()) + "\n"


GENERATORS = {
    "settings": settings_markdown,
    "cli": cli_markdown,
    "api": api_markdown,
    "errors": errors_markdown,
    "route-codes": route_codes_markdown,
    "memory-gaps": memory_gaps_markdown,
}
