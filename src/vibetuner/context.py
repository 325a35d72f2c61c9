"""``AppContext``: the typed home of everything an app holds for its lifetime.

One instance per app, built by ``create_app`` and filled at startup: settings,
templates, the database, the email sender, and what features open (the blob store,
the sign-in service, ...). Routes reach it with the ``Context`` dependency
(``vibetuner.web.context``); command-line tools build one with :func:`open_context`,
and a job worker with :func:`create_context`.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vibetuner.config import Settings, get_settings
from vibetuner.errors import ConfigurationError
from vibetuner.features import Feature, check_dependencies
from vibetuner.i18n import Catalogs
from vibetuner.models import core_document_models
from vibetuner.mongo import connect, init_models
from vibetuner.services.email import Mailer, backend_from_settings
from vibetuner.templating import Templates

if TYPE_CHECKING:
    from beanie import Document
    from starlette.requests import Request

    from vibetuner.auth.oauth_providers import OAuthProviders
    from vibetuner.auth.signin import AuthService
    from vibetuner.blobs.store import BlobStore
    from vibetuner.models.user import UserModel
    from vibetuner.mongo import Mongo
    from vibetuner.services.email import EmailBackend, Mailer
    from vibetuner.services.links import LinkBuilder
    from vibetuner.web.static_assets import StaticAssets


def document_models(extra: Sequence[type[Document]] = ()) -> list[type[Document]]:
    """Core models (``vibetuner.models.__all__``) followed by ``extra``, without repeats."""

    merged: list[type[Document]] = []
    for model in [*core_document_models(), *extra]:
        if model not in merged:
            merged.append(model)
    return merged


@dataclass(eq=False)
class AppContext:
    """What an app holds; attributes that startup fills are None before it."""

    settings: Settings
    templates: Templates
    features: Sequence[Feature] = ()
    app_models: Sequence[type[Document]] = ()
    email_backend: EmailBackend | None = None
    links: LinkBuilder | None = None
    mongo: Mongo | None = None
    mailer: Mailer | None = None
    blobs: BlobStore | None = None
    auth: AuthService | None = None
    oauth: OAuthProviders | None = None
    static: StaticAssets | None = None
    #: The signed-in user of a request (``async def loader(request)``), set by the sign-in
    #: feature; the core asks it through ``vibetuner.web.identity.signed_in_user``.
    user_loader: Callable[[Request], Awaitable[UserModel | None]] | None = None
    #: The translations (framework and app catalogs) and the locales offered.
    i18n: Catalogs = field(default_factory=Catalogs)
    #: Run when a user deletes their account, to remove the app's own data of that user
    #: (``async def cleaner(user)``); vibetuner removes its own documents and files.
    user_data_cleaners: list[Callable[[UserModel], Awaitable[None]]] = field(default_factory=list)
    #: Room for an app's own features to keep what they open.
    extras: dict[str, Any] = field(default_factory=dict)

    def models(self) -> list[type[Document]]:
        """Core models, then each feature's, then the app's, without repeats."""
        feature_models = [model for feature in self.features for model in feature.models()]
        return document_models([*feature_models, *self.app_models])

    def has_feature(self, name: str) -> bool:
        """True when a feature of that name is part of the app."""
        return any(feature.name == name for feature in self.features)

    def require_static(self) -> StaticAssets:
        """The static files; a clear error outside an app made by ``create_app``."""
        if self.static is None:
            raise ConfigurationError("static files are served by apps made by create_app")
        return self.static

    def require_blobs(self) -> BlobStore:
        """The blob store; a clear error when the blob feature is not started."""
        if self.blobs is None:
            raise ConfigurationError("blob storage is not running: add BlobsFeature() to the app")
        return self.blobs

    def require_auth(self) -> AuthService:
        """The sign-in service; a clear error when the sign-in feature is not started."""
        if self.auth is None:
            raise ConfigurationError("sign-in is not running: add AuthFeature() to the app")
        return self.auth

    def require_mailer(self) -> Mailer:
        """The email sender; a clear error before startup."""
        if self.mailer is None:
            raise ConfigurationError("email is not set up yet: the app has not started")
        return self.mailer


@asynccontextmanager
async def running(context: AppContext) -> AsyncIterator[AppContext]:
    """Connect the database, register the models, build the mailer, enter every feature.

    Everything opened is closed in reverse order on the way out, also when startup fails
    half way.
    """

    settings = context.settings
    async with AsyncExitStack() as stack:
        mongo = await connect(settings)
        stack.push_async_callback(mongo.close)
        await init_models(mongo, context.models())
        context.mongo = mongo
        backend = context.email_backend or backend_from_settings(settings)
        context.mailer = Mailer(
            backend, context.templates.env, settings.email_from, catalogs=context.i18n
        )
        for feature in context.features:
            await stack.enter_async_context(feature.lifespan(context))
        try:
            yield context
        finally:
            context.mongo = None


def create_context(
    *,
    features: Sequence[Feature],
    models: Sequence[type[Document]] = (),
    settings: Settings | None = None,
    template_dirs: Sequence[str | os.PathLike[str]] = (),
    locale_dirs: Sequence[str | os.PathLike[str]] = (),
    email_backend: EmailBackend | None = None,
) -> AppContext:
    """An ``AppContext`` of ``features`` and ``models``, checked as ``create_app`` checks
    them, and not started: what ``create_app`` builds its app on, and what a
    ``vibetuner run worker`` process runs its jobs with (no web app at all).

    ``ConfigurationError`` for a missing required feature or settings a feature cannot
    work with. The arguments mean what they mean for ``create_app``.
    """
    active = settings or get_settings()
    chosen = list(features)
    check_dependencies(chosen)
    problems = [problem for feature in chosen for problem in feature.check_settings(active)]
    if problems:
        raise ConfigurationError("; ".join(problems))
    templates = Templates(template_dirs)
    for feature in chosen:
        for directory in feature.template_dirs():
            templates.add_dir(directory, first=False)
    return AppContext(
        settings=active,
        templates=templates,
        features=chosen,
        app_models=models,
        email_backend=email_backend,
        i18n=Catalogs(active.locales, active.default_locale, locale_dirs),
    )


@asynccontextmanager
async def open_context(
    settings: Settings, features: Sequence[Feature] = (), models: Sequence[type[Document]] = ()
) -> AsyncIterator[AppContext]:
    """A started context outside a web app (command-line tools, scripts, workers)."""

    context = AppContext(
        settings=settings, templates=Templates(), features=features, app_models=models
    )
    async with running(context):
        yield context
