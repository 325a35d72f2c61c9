"""vibetuner: an async web framework for FastAPI and MongoDB apps.

Importing the package is cheap: every name below is loaded on first use, so
``from vibetuner import create_app`` costs FastAPI's import and nothing more.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Public name -> the module that defines it.
_EXPORTS: dict[str, str] = {
    # building an app
    "create_app": "vibetuner.app",
    "default_features": "vibetuner.app",
    "Feature": "vibetuner.features",
    "ErrorAnswer": "vibetuner.features",
    "SignIn": "vibetuner.features",
    "running_app": "vibetuner.cli.app_session",
    "AuthFeature": "vibetuner.auth.feature",
    "BlobsFeature": "vibetuner.blobs.routes",
    "JobsFeature": "vibetuner.jobs.feature",
    "AdminFeature": "vibetuner.admin.feature",
    "RateLimitFeature": "vibetuner.ratelimit.feature",
    "Settings": "vibetuner.config",
    "get_settings": "vibetuner.config",
    "AppContext": "vibetuner.context",
    "open_context": "vibetuner.context",
    "create_context": "vibetuner.context",
    # in routes
    "Context": "vibetuner.web.context",
    "app_context": "vibetuner.web.context",
    "CurrentUser": "vibetuner.auth.session_auth",
    "RequireUser": "vibetuner.auth.session_auth",
    "current_user": "vibetuner.auth.session_auth",
    "require_user": "vibetuner.auth.session_auth",
    "login": "vibetuner.auth.session_auth",
    "logout": "vibetuner.auth.session_auth",
    "require_role": "vibetuner.auth.two_factor",
    "require_fresh_second_factor": "vibetuner.auth.fresh_factor",
    "require_scope": "vibetuner.auth.api_tokens",
    "render_page": "vibetuner.web.pages",
    "problem_page": "vibetuner.web.pages",
    "flash": "vibetuner.web.flash",
    "rate_limit": "vibetuner.ratelimit.route",
    "FlashAction": "vibetuner.web.flash",
    "Htmx": "vibetuner.web.htmx",
    "HtmxDetails": "vibetuner.web.htmx",
    "is_htmx": "vibetuner.web.htmx",
    "hx_redirect": "vibetuner.web.htmx",
    "hx_location": "vibetuner.web.htmx",
    "hx_refresh": "vibetuner.web.htmx",
    "hx_trigger": "vibetuner.web.htmx",
    "hx_retarget": "vibetuner.web.htmx",
    "hx_reswap": "vibetuner.web.htmx",
    "add_template_dir": "vibetuner.web.context",
    "parse_object_id": "vibetuner.models.ids",
    # models
    "UserModel": "vibetuner.models",
    "OAuthAccount": "vibetuner.models",
    "EmailVerificationToken": "vibetuner.models",
    "Blob": "vibetuner.models",
    "BlobStatus": "vibetuner.models",
    "TimeStampMixin": "vibetuner.models",
    # services
    "BlobStore": "vibetuner.blobs.store",
    "Mailer": "vibetuner.services.email",
    # errors
    "VibetunerError": "vibetuner.errors",
    "ConfigurationError": "vibetuner.errors",
    "DatabaseUnavailable": "vibetuner.errors",
    "DuplicateKey": "vibetuner.errors",
    "DuplicateEmail": "vibetuner.errors",
    "BlobError": "vibetuner.errors",
    "BlobNotFound": "vibetuner.errors",
    "BlobStorageError": "vibetuner.errors",
    "BlobTooLarge": "vibetuner.errors",
    "BlobUnavailable": "vibetuner.errors",
    "ImageTooLarge": "vibetuner.errors",
    "EmailDeliveryError": "vibetuner.errors",
    "RateLimitExceeded": "vibetuner.errors",
    "JobQueueUnavailable": "vibetuner.errors",
}
# Names whose attribute differs from the public name.
_ALIASES = {"render_page": "render", "problem_page": "problem"}

__all__ = [
    "__version__",
    "create_app",
    "default_features",
    "Feature",
    "ErrorAnswer",
    "SignIn",
    "running_app",
    "AdminFeature",
    "AuthFeature",
    "BlobsFeature",
    "JobsFeature",
    "RateLimitFeature",
    "Settings",
    "get_settings",
    "AppContext",
    "open_context",
    "create_context",
    "Context",
    "app_context",
    "CurrentUser",
    "RequireUser",
    "current_user",
    "require_user",
    "login",
    "logout",
    "require_role",
    "require_fresh_second_factor",
    "require_scope",
    "render_page",
    "problem_page",
    "flash",
    "rate_limit",
    "FlashAction",
    "Htmx",
    "HtmxDetails",
    "is_htmx",
    "hx_redirect",
    "hx_location",
    "hx_refresh",
    "hx_trigger",
    "hx_retarget",
    "hx_reswap",
    "add_template_dir",
    "parse_object_id",
    "UserModel",
    "OAuthAccount",
    "EmailVerificationToken",
    "Blob",
    "BlobStatus",
    "TimeStampMixin",
    "BlobStore",
    "Mailer",
    "VibetunerError",
    "ConfigurationError",
    "DatabaseUnavailable",
    "DuplicateKey",
    "DuplicateEmail",
    "BlobError",
    "BlobNotFound",
    "BlobStorageError",
    "BlobTooLarge",
    "BlobUnavailable",
    "ImageTooLarge",
    "EmailDeliveryError",
    "RateLimitExceeded",
    "JobQueueUnavailable",
]

if TYPE_CHECKING:
    from vibetuner.admin.feature import AdminFeature
    from vibetuner.app import create_app, default_features
    from vibetuner.auth.api_tokens import require_scope
    from vibetuner.auth.feature import AuthFeature
    from vibetuner.auth.fresh_factor import require_fresh_second_factor
    from vibetuner.auth.session_auth import (
        CurrentUser,
        RequireUser,
        current_user,
        login,
        logout,
        require_user,
    )
    from vibetuner.auth.two_factor import require_role
    from vibetuner.blobs.routes import BlobsFeature
    from vibetuner.blobs.store import BlobStore
    from vibetuner.cli.app_session import running_app
    from vibetuner.config import Settings, get_settings
    from vibetuner.context import AppContext, create_context, open_context
    from vibetuner.errors import (
        BlobError,
        BlobNotFound,
        BlobStorageError,
        BlobTooLarge,
        BlobUnavailable,
        ConfigurationError,
        DatabaseUnavailable,
        DuplicateEmail,
        DuplicateKey,
        EmailDeliveryError,
        ImageTooLarge,
        JobQueueUnavailable,
        RateLimitExceeded,
        VibetunerError,
    )
    from vibetuner.features import ErrorAnswer, Feature, SignIn
    from vibetuner.jobs.feature import JobsFeature
    from vibetuner.models import (
        Blob,
        BlobStatus,
        EmailVerificationToken,
        OAuthAccount,
        TimeStampMixin,
        UserModel,
    )
    from vibetuner.models.ids import parse_object_id
    from vibetuner.ratelimit.feature import RateLimitFeature
    from vibetuner.ratelimit.route import rate_limit
    from vibetuner.services.email import Mailer
    from vibetuner.web.context import Context, add_template_dir, app_context
    from vibetuner.web.flash import FlashAction, flash
    from vibetuner.web.htmx import (
        Htmx,
        HtmxDetails,
        hx_location,
        hx_redirect,
        hx_refresh,
        hx_reswap,
        hx_retarget,
        hx_trigger,
        is_htmx,
    )
    from vibetuner.web.pages import problem as problem_page
    from vibetuner.web.pages import render as render_page


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'vibetuner' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), _ALIASES.get(name, name))
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
