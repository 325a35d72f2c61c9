"""What ``/admin/debug`` shows in development: settings, routes, models, the database."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from starlette.routing import BaseRoute, Mount, Route

from vibetuner.context import AppContext
from vibetuner.services.audit import MASK, is_secret_field
from vibetuner.web.context import RouterLinks


@dataclass
class DebugReport:
    """The page's content, as plain values."""

    database: str
    settings: list[tuple[str, str]] = field(default_factory=list)
    routes: list[tuple[str, str, str]] = field(default_factory=list)
    models: list[tuple[str, str, list[str]]] = field(default_factory=list)


def masked_settings(settings: Any) -> list[tuple[str, str]]:
    """``(NAME, value)`` of every setting; secrets (and values named like one) masked."""
    rows = []
    for name in sorted(type(settings).model_fields):
        value = getattr(settings, name)
        if isinstance(value, SecretStr) or (is_secret_field(name) and value not in (None, "")):
            shown = MASK if value is not None else "None"
        elif isinstance(value, list) and any(hasattr(item, "client_secret") for item in value):
            shown = ", ".join(str(getattr(item, "name", "?")) for item in value) + f" ({MASK})"
        elif isinstance(value, (str, Path)):
            shown = str(value)
        else:
            shown = repr(value)
        rows.append((name.upper(), shown))
    return rows


def route_rows(routes: list[BaseRoute], prefix: str = "") -> list[tuple[str, str, str]]:
    """``(methods, path, name)`` for every route, mounts included with their prefix."""
    rows: list[tuple[str, str, str]] = []
    for item in routes:
        if isinstance(item, Route):
            methods = ", ".join(sorted(item.methods or ()))
            rows.append((methods, prefix + item.path, item.name or ""))
        elif isinstance(item, Mount):
            rows.append(("*", prefix + item.path + "/...", item.name or ""))
        else:
            rows.append(("", prefix + str(getattr(item, "path", "")), type(item).__name__))
    return rows


async def debug_report(context: AppContext) -> DebugReport:
    """Gather the report for the running app."""
    mongo = context.mongo
    if mongo is None:
        database = "not connected"
    elif mongo.in_memory:
        database = "in memory" + (" (saved to a file in development)" if mongo.devfile else "")
    else:
        database = f"MongoDB at {mongo.hosts}, database {mongo.database.name}"
    report = DebugReport(database=database, settings=masked_settings(context.settings))
    if isinstance(context.links, RouterLinks):
        report.routes = route_rows(list(context.links.router.routes))
    for model in context.models():
        indexes: list[str] = []
        try:
            info = await model.get_pymongo_collection().index_information()
            indexes = [
                f"{name}: {', '.join(f'{k} {d}' for k, d in spec['key'])}"
                + (" unique" if spec.get("unique") else "")
                for name, spec in sorted(info.items())
            ]
        except Exception as exc:  # the page still shows the rest
            indexes = [f"could not read: {type(exc).__name__}"]
        report.models.append((model.__name__, str(model.get_collection_name()), indexes))
    return report
