"""Backends chosen by name or by dotted path, as Django chooses its email and storage backends.

``EMAIL_BACKEND=smtp`` names a built-in; ``EMAIL_BACKEND=myapp.mail:SesBackend`` (or
``myapp.mail.SesBackend``) names an app's own class. A class with a ``from_settings``
classmethod is built with the settings, any other is called without arguments.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from vibetuner.config import Settings
from vibetuner.errors import ConfigurationError


def import_object(path: str) -> Any:
    """The object a ``package.module:name`` or ``package.module.name`` path points to."""
    module_name, sep, attribute = path.partition(":")
    if not sep:
        module_name, _, attribute = path.rpartition(".")
    if not module_name or not attribute:
        raise ConfigurationError(f"{path!r} is not a dotted path like 'package.module:Class'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(f"cannot import {module_name!r} (from {path!r}): {exc}") from None
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise ConfigurationError(f"{module_name!r} has no attribute {attribute!r}") from None


def build_backend(setting: str, value: str, builtins: Mapping[str, str], settings: Settings) -> Any:
    """The backend ``value`` names: a key of ``builtins`` or a dotted path to a class."""
    target = builtins.get(value, value)
    if target == value and "." not in value:
        known = ", ".join(builtins)
        raise ConfigurationError(
            f"{setting}={value!r} is not a backend: use one of {known} or a dotted path"
        )
    factory = import_object(target)
    from_settings = getattr(factory, "from_settings", None)
    return from_settings(settings) if callable(from_settings) else factory()
