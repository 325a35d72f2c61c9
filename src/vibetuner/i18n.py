"""Translations with Babel: catalogs, the locale of the work at hand, and gettext.

vibetuner's own strings live in the ``vibetuner`` domain (``vibetuner/locales``, shipped
compiled); an app adds its own catalogs (domain ``messages``), whose entries win over
the framework's. Which locale applies is decided per request by
``vibetuner.web.locale`` and kept in a context variable, so ``gettext`` here, ``_()`` in
templates and the date and number filters all follow it without being passed anything::

    from vibetuner.i18n import gettext as _, ngettext

    flash(request, _("Saved."))
    ngettext("%(num)d file", "%(num)d files", count) % {"num": count}

Outside a request (scripts, emails to a given person) use :func:`use_locale`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from gettext import NullTranslations
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from babel.support import LazyProxy

DOMAIN = "vibetuner"
APP_DOMAIN = "messages"
FRAMEWORK_LOCALES = Path(__file__).resolve().parent / "locales"


def N_(message: str) -> str:  # noqa: N802 -- the conventional name of the marker
    """Mark ``message`` for extraction without translating it (translated where shown)."""
    return message


class Catalogs:
    """The translations of one app: framework catalogs, then the app's own on top.

    ``supported`` are the locales offered (the first that exists for a request wins);
    a locale without a catalog falls back to the source strings (English).
    """

    def __init__(
        self,
        supported: Sequence[str] = ("en",),
        default: str = "en",
        app_dirs: Sequence[str | os.PathLike[str]] = (),
    ) -> None:
        self.supported = [normalize(code) for code in supported]
        self.default = normalize(default)
        if self.default not in self.supported:
            self.supported.insert(0, self.default)
        self.app_dirs = [Path(d) for d in app_dirs]
        self._loaded: dict[str, NullTranslations] = {}
        self._names: list[tuple[str, str]] | None = None
        self._has: dict[str, bool] = {}

    def add_dir(self, directory: str | os.PathLike[str]) -> None:
        """Also load the ``messages`` catalogs of ``directory`` (later folders win)."""
        self.app_dirs.append(Path(directory))
        self._loaded.clear()
        self._has.clear()

    def has_catalog(self, locale: str) -> bool:
        """True when the framework or the app has a compiled catalog for ``locale``."""
        known = self._has.get(locale)
        if known is None:
            places = [(FRAMEWORK_LOCALES, DOMAIN)] + [(d, APP_DOMAIN) for d in self.app_dirs]
            known = any(
                (Path(directory) / code / "LC_MESSAGES" / f"{domain}.mo").is_file()
                for directory, domain in places
                for code in _candidates(locale)
            )
            self._has[locale] = known
        return known

    def translations(self, locale: str) -> NullTranslations:
        """The merged translations for ``locale`` (loaded once; none without a catalog)."""
        if not self.has_catalog(locale):
            return _NO_TRANSLATIONS
        found = self._loaded.get(locale)
        if found is None:
            # Babel is imported on the first translated request, not at startup.
            from babel.support import Translations

            found = Translations.load(str(FRAMEWORK_LOCALES), [locale], DOMAIN)
            for directory in self.app_dirs:
                own = Translations.load(str(directory), [locale], APP_DOMAIN)
                if isinstance(own, Translations):
                    if isinstance(found, Translations):
                        found.merge(own)
                    else:
                        found = own
            self._loaded[locale] = found
        return found

    def pick(self, candidate: str | None) -> str | None:
        """``candidate`` (``de-AT``, ``es``) as a supported locale, or None."""
        if not candidate:
            return None
        code = normalize(candidate)
        if code in self.supported:
            return code
        language = code.split("_", 1)[0]
        return language if language in self.supported else None

    def negotiate(self, accept_language: str) -> str | None:
        """The best supported locale for an ``Accept-Language`` header, or None."""
        ranked: list[tuple[float, int, str]] = []
        for position, part in enumerate(accept_language.split(",")[:20]):
            pieces = part.strip().split(";")
            tag, quality = pieces[0].strip(), 1.0
            for parameter in pieces[1:]:
                name, _, value = parameter.strip().partition("=")
                if name == "q":
                    try:
                        quality = float(value)
                    except ValueError:
                        quality = 0.0
            if tag and tag != "*" and quality > 0:
                ranked.append((-quality, position, tag))
        for _quality, _position, tag in sorted(ranked):
            chosen = self.pick(tag)
            if chosen is not None:
                return chosen
        return None

    def names(self) -> list[tuple[str, str]]:
        """``(code, name in its own language)`` of every supported locale."""
        if self._names is None:
            self._names = [(code, display_name(code)) for code in self.supported]
        return self._names


def _candidates(locale: str) -> list[str]:
    # Babel looks for de_AT, then de: so does the catalog check.
    language = locale.split("_", 1)[0]
    return [locale] if language == locale else [locale, language]


def normalize(code: str) -> str:
    """``de-AT`` / ``de_at`` -> ``de_AT``; ``ES`` -> ``es``."""
    language, _, region = code.strip().replace("-", "_").partition("_")
    return f"{language.lower()}_{region.upper()}" if region else language.lower()


def display_name(code: str) -> str:
    """The locale's own name for itself, capitalised (``Deutsch``, ``español``)."""
    from babel import Locale, UnknownLocaleError

    try:
        name = Locale.parse(code).get_display_name(code) or code
    except (UnknownLocaleError, ValueError):
        return code
    return name[:1].upper() + name[1:]


@dataclass
class LocaleState:
    """The locale of the work at hand and its translations (changed in place)."""

    locale: str
    translations: NullTranslations


_NO_TRANSLATIONS = NullTranslations()
_state: ContextVar[LocaleState | None] = ContextVar("vibetuner_locale", default=None)


def current_locale() -> str:
    """The locale in force (``en`` outside any request)."""
    state = _state.get()
    return state.locale if state is not None else "en"


def current_translations() -> NullTranslations:
    """The translations of the locale in force (none: the source strings)."""
    state = _state.get()
    return state.translations if state is not None else _NO_TRANSLATIONS


def gettext(message: str, **variables: Any) -> str:
    """``message`` in the current locale; ``%(name)s`` placeholders filled from ``variables``."""
    text = current_translations().gettext(message)
    return text % variables if variables else text


def ngettext(singular: str, plural: str, num: int, **variables: Any) -> str:
    """The singular or plural form for ``num`` in the current locale (``%(num)d`` is set)."""
    text = current_translations().ngettext(singular, plural, num)
    return text % {"num": num, **variables}


def lazy_gettext(message: str, **variables: Any) -> LazyProxy:
    """``gettext`` evaluated when the string is used (for module-level constants)."""
    from babel.support import LazyProxy

    return LazyProxy(gettext, message, enable_cache=False, **variables)


def begin(catalogs: Catalogs, locale: str) -> Any:
    """Make ``locale`` current for this task; returns the token for :func:`end`."""
    return _state.set(LocaleState(locale, catalogs.translations(locale)))


def clear() -> Any:
    """No locale state for this task (the source strings); returns the token for :func:`end`."""
    return _state.set(None)


def end(token: Any) -> None:
    """Undo :func:`begin`."""
    _state.reset(token)


def switch(catalogs: Catalogs, locale: str) -> None:
    """Change the current locale in place (a signed-in user's preference, found later)."""
    state = _state.get()
    if state is None:
        begin(catalogs, locale)
        return
    state.locale = locale
    state.translations = catalogs.translations(locale)


@contextmanager
def use_locale(catalogs: Catalogs, locale: str | None) -> Iterator[str]:
    """Run a block in ``locale`` (a supported one, else the default): an email to a person."""
    chosen = catalogs.pick(locale) or catalogs.default
    token = begin(catalogs, chosen)
    try:
        yield chosen
    finally:
        end(token)


def format_date(value: date | datetime | None, format: str = "medium") -> str:
    """A date in the current locale (``25 Nov 2026``, ``25.11.2026`` ...)."""
    if value is None:
        return ""
    from babel.dates import format_date as babel_format_date

    return babel_format_date(value, format=format, locale=current_locale())


def format_datetime(value: datetime | None, format: str = "medium") -> str:
    """A date and time in the current locale, in UTC."""
    if value is None:
        return ""
    from babel.dates import format_datetime as babel_format_datetime

    return babel_format_datetime(value, format=format, tzinfo=None, locale=current_locale())


def _aware(value: datetime) -> datetime:
    """``value`` with a time zone (a naive datetime from the database is UTC)."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def format_ago(value: datetime | None, now: datetime | None = None) -> str:
    """How long ago ``value`` was, in the current locale (``2 minutes ago``, ``vor 2 Minuten``)."""
    if value is None:
        return ""
    from babel.dates import format_timedelta

    now = _aware(now) if now is not None else datetime.now(UTC)
    delta = _aware(value) - now
    if abs(delta.total_seconds()) < 45:
        # Babel would say "0 seconds ago" / "in 3 seconds" (clock skew): say "just now".
        return gettext("just now")
    return format_timedelta(delta, add_direction=True, locale=current_locale())


def format_wait(seconds: int) -> str:
    """A wait in the current locale's words: ``42 seconds``, ``13 minutes``."""
    from babel.dates import format_timedelta

    return format_timedelta(timedelta(seconds=max(1, seconds)), locale=current_locale())


def format_filesize(size: int | None) -> str:
    """A file size for people, in the current locale: ``6 B``, ``1.2 KB``, ``3,4 MB``."""
    if size is None:
        return ""
    from babel.numbers import format_decimal

    if size < 1024:
        return f"{format_decimal(size, locale=current_locale())} B"
    value = float(size)
    for unit in ("KB", "MB", "GB", "TB"):
        value /= 1024
        if value < 1024 or unit == "TB":
            break
    shown = format_decimal(round(value, 1), format="#,##0.#", locale=current_locale())
    return f"{shown} {unit}"


def format_number(value: float | int) -> str:
    """A number with the current locale's separators (``1,234.5``, ``1.234,5``)."""
    from babel.numbers import format_decimal

    return format_decimal(value, locale=current_locale())


def catalog_problems(po_file: str | os.PathLike[str]) -> list[str]:
    """The entries of a ``.po`` catalog that are untranslated, fuzzy, or whose
    ``%(name)s`` placeholders differ from the source string, one line each."""
    from babel.messages.pofile import read_po

    with open(po_file, "rb") as handle:
        catalog = read_po(handle)
    problems = [
        f"placeholders differ: {message.id!r}: {'; '.join(str(e) for e in errors)}"
        for message, errors in catalog.check()
    ]
    for message in catalog:
        if not message.id:
            continue
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if message.fuzzy:
            problems.append(f"fuzzy: {message.id!r}")
        elif not all(strings):
            problems.append(f"untranslated: {message.id!r}")
    return problems


# Where strings are looked for: Python modules and Jinja2 templates (HTML and text).
EXTRACT_MAPPING = [
    ("**.py", "python"),
    ("**/templates/**.html", "jinja2"),
    ("**/templates/**.txt", "jinja2"),
]
EXTRACT_KEYWORDS = ("N_", "lazy_gettext")


def extract_messages(source_dir: str | os.PathLike[str]) -> set[str]:
    """The translatable strings (singular ids) used under ``source_dir`` right now."""
    from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir

    keywords: dict[str, Any] = {**DEFAULT_KEYWORDS, **{k: None for k in EXTRACT_KEYWORDS}}
    found: set[str] = set()
    for _filename, _lineno, message, _comments, _context in extract_from_dir(
        str(source_dir), method_map=EXTRACT_MAPPING, keywords=keywords
    ):
        found.add(message[0] if isinstance(message, tuple) else message)
    return found


def catalog_ids(po_file: str | os.PathLike[str]) -> set[str]:
    """The (singular) message ids of a catalog."""
    from babel.messages.pofile import read_po

    with open(po_file, "rb") as handle:
        catalog = read_po(handle)
    return {str(m.id[0]) if isinstance(m.id, (tuple, list)) else str(m.id) for m in catalog if m.id}


def _messages(catalog: Any) -> dict[Any, Any]:
    # Message pairs without the header entry (id ""): the header carries the
    # Babel version that wrote the file, which changes with every release.
    def plain(value: Any) -> Any:
        return tuple(value) if isinstance(value, (list, tuple)) else value

    return {
        (plain(message.id), message.context): plain(message.string)
        for message in catalog
        if message.id
    }


def compiled_catalog_is_current(po_file: str | os.PathLike[str]) -> bool:
    """Whether the ``.mo`` file beside ``po_file`` holds exactly its translations.

    Compares the messages only, never the header, so a catalog compiled by another
    Babel release still counts as current."""
    import io

    from babel.messages.mofile import read_mo, write_mo
    from babel.messages.pofile import read_po

    compiled = Path(po_file).with_suffix(".mo")
    if not compiled.exists():
        return False
    expected = io.BytesIO()
    with open(po_file, "rb") as source:
        write_mo(expected, read_po(source))
    expected.seek(0)
    with open(compiled, "rb") as shipped:
        return _messages(read_mo(expected)) == _messages(read_mo(shipped))
