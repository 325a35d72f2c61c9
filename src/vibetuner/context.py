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
from typing import TYPE_CHECKING, TypeVar, cast

from vibetuner.config import Settings, get_settings
from vibetuner.errors import ConfigurationError
from vibetuner.features import Feature, check_dependencies, read_settings
from vibetuner.i18n import Catalogs
from vibetuner.models import core_document_models
from vibetuner.mongo import connect, init_models
from vibetuner.services.email import Mailer, backend_from_settings
from vibetuner.templating import Templates

if TYPE_CHECKING:
    from beanie import Document
    from starlette.requests import Request

    from vibetuner.models.user import UserModel
    from vibetuner.mongo import Mongo
    from vibetuner.services.email import EmailBackend, Mailer
    from vibetuner.services.links import LinkBuilder
    from vibetuner.web.static_assets import StaticAssets


T = TypeVar("T")
F = TypeVar("F", bound="Feature")


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
    static: StaticAssets | None = None
    #: The signed-in user of a request (``async def loader(request)``), set by the sign-in
    #: feature; the core asks it through ``vibetuner.web.identity.signed_in_user``.
    user_loader: Callable[[Request], Awaitable[UserModel | None]] | None = None
    #: The translations (framework and app catalogs) and the locales offered.
    i18n: Catalogs = field(default_factory=Catalogs)
    #: Run when a user deletes their account, to remove the app's own data of that user
    #: (``async def cleaner(user)``); vibetuner removes its own documents and files.
    user_data_cleaners: list[Callable[[UserModel], Awaitable[None]]] = field(default_factory=list)
    #: What features open, by type (:meth:`provide`, :meth:`get`): a feature's settings
    #: section, its services.
    services: dict[type, object] = field(default_factory=dict)

    def models(self) -> list[type[Document]]:
        """Each feature's models, then the app's, without repeats."""
        merged: list[type[Document]] = []
        for feature in self.features:
            merged += [model for model in feature.models() if model not in merged]
        return merged + [model for model in self.app_models if model not in merged]

    def has_feature(self, name: str) -> bool:
        """True when a feature of that name is part of the app."""
        return any(feature.name == name for feature in self.features)

    def find_feature(self, kind: type[F]) -> F | None:
        """The app's feature of class ``kind`` (or a subclass), or None."""
        return next((f for f in self.features if isinstance(f, kind)), None)

    def feature(self, kind: type[F]) -> F:
        """The app's feature of class ``kind``; a clear error when the app has none."""
        found = self.find_feature(kind)
        if found is None:
            raise ConfigurationError(
                f"this app has no {kind.__name__}: add {kind.__name__}() to its features"
            )
        return found

    def provide(self, service: object, *, as_type: type | None = None) -> None:
        """Keep ``service`` for the app's lifetime, found by its type (or ``as_type``)."""
        self.services[as_type or type(service)] = service

    def withdraw(self, kind: type) -> None:
        """Forget the service kept under ``kind`` (a feature's shutdown)."""
        self.services.pop(kind, None)

    def find(self, kind: type[T]) -> T | None:
        """The service kept under ``kind``, or None."""
        return cast("T | None", self.services.get(kind))

    def get(self, kind: type[T]) -> T:
        """The service kept under ``kind``; a clear error when nothing provides it."""
        found = self.find(kind)
        if found is None:
            raise ConfigurationError(
                f"nothing in this app provides {kind.__name__} (is its feature added, "
                "and has the app started?)"
            )
        return found

    def require_static(self) -> StaticAssets:
        """The static files; a clear error outside an app made by ``create_app``."""
        if self.static is None:
            raise ConfigurationError("static files are served by apps made by create_app")
        return self.static

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
    context = AppContext(
        settings=active,
        templates=templates,
        features=chosen,
        app_models=models,
        email_backend=email_backend,
        i18n=Catalogs(active.locales, active.default_locale, locale_dirs),
    )
    # Each feature's own settings section, validated now: a bad value stops the app here.
    provide_settings_sections(context)
    return context


def provide_settings_sections(context: AppContext) -> None:
    """Read each feature's settings section (``Feature.settings_class``) and keep it by
    its class; ``ConfigurationError`` with one line per bad variable."""
    for feature in context.features:
        section = read_settings(feature)
        if feature.settings_class is not None and section is not None:
            context.provide(section, as_type=feature.settings_class)


@asynccontextmanager
async def open_context(
    settings: Settings, features: Sequence[Feature] = (), models: Sequence[type[Document]] = ()
) -> AsyncIterator[AppContext]:
    """A started context outside a web app (command-line tools, scripts, workers)."""
    context = AppContext(
        settings=settings, templates=Templates(), features=features, app_models=models
    )
    provide_settings_sections(context)
    async with running(context):
        yield context
