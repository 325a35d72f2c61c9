"""Translations in templates: ``_()``, ``gettext``, ``ngettext``, ``{% trans %}`` and the
locale filters, all in the current locale (``vibetuner.i18n``).

The gettext callables behave as Jinja's "newstyle" gettext (``jinja2.ext.i18n`` with
``newstyle_gettext``): the translation is always a format string, filled from the
keyword arguments, and in an autoescaped template it is markup whose placeholders are
escaped. Jinja's own callables wrap the translation function in a second template call
(and ``_()`` in a third, to find ``gettext``); a page calls ``_()`` about a hundred
times, so these read the request's translations directly, in one call each.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

import jinja2
from jinja2.nodes import EvalContext
from markupsafe import Markup

from vibetuner.i18n import (
    current_locale,
    current_translations,
    format_ago,
    format_date,
    format_datetime,
    format_filesize,
    format_number,
)


@jinja2.pass_eval_context
def gettext(eval_ctx: EvalContext, message: str, /, **variables: Any) -> str:
    """``message`` in the current locale, placeholders filled from ``variables``."""
    text = current_translations().gettext(message)
    if eval_ctx.autoescape:
        return Markup(text) % variables
    return text % variables


@jinja2.pass_eval_context
def ngettext(
    eval_ctx: EvalContext, singular: str, plural: str, num: int, /, **variables: Any
) -> str:
    """The singular or plural form for ``num`` (``%(num)d`` is ``num`` unless given)."""
    variables.setdefault("num", num)
    text = current_translations().ngettext(singular, plural, num)
    if eval_ctx.autoescape:
        return Markup(text) % variables
    return text % variables


def install(environment: jinja2.Environment) -> None:
    """Give a Jinja2 environment ``_()``, ``{% trans %}`` and the locale filters."""
    environment.add_extension("jinja2.ext.i18n")
    # Newstyle gettext (Jinja's documented switch): {% trans %} blocks pass their
    # variables to gettext as keywords, and it fills and escapes them.
    environment.newstyle_gettext = True  # type: ignore[attr-defined]
    environment.globals.update(
        {"_": gettext, "gettext": gettext, "ngettext": ngettext, "current_locale": current_locale}
    )
    environment.globals["utc"] = UTC
    environment.filters.update(
        {
            "date": format_date,
            "datetime": format_datetime,
            "number": format_number,
            "ago": format_ago,
            "filesize": format_filesize,
        }
    )
