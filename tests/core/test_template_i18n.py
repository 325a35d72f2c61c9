"""``_()``, ``ngettext`` and ``{% trans %}`` in templates: Jinja's newstyle behaviour, in
the current locale, escaped in HTML and left alone in text."""

from __future__ import annotations

import jinja2
import pytest

from vibetuner import i18n
from vibetuner.templating import template_environment

SOURCES = {
    "page.html": (
        '{{ _("Signed in as %(email)s", email=email) }}|'
        '{{ _("100%% sure") }}|{{ _("Sign in") }}|'
        '{{ ngettext("%(num)d file", "%(num)d files", count) }}|'
        "{% trans who=who %}Hello {{ who }}{% endtrans %}|"
        '{{ gettext("Dismiss") }}'
    ),
    "page.txt": '{{ _("Signed in as %(email)s", email=email) }}',
}


def environment() -> jinja2.Environment:
    env = template_environment()
    env.loader = jinja2.ChoiceLoader([jinja2.DictLoader(SOURCES), env.loader])  # type: ignore[list-item]
    return env


def render(name: str, **values: object) -> str:
    return environment().get_template(name).render(**values)


def test_placeholders_are_escaped_in_html_and_percent_signs_are_single() -> None:
    out = render("page.html", email="<b>a@x</b>", count=3, who="<i>Ann</i>")
    assert out.split("|") == [
        "Signed in as &lt;b&gt;a@x&lt;/b&gt;",
        "100% sure",
        "Sign in",
        "3 files",
        "Hello &lt;i&gt;Ann&lt;/i&gt;",
        "Dismiss",
    ]


def test_text_templates_are_not_escaped() -> None:
    assert render("page.txt", email="<b>a@x</b>") == "Signed in as <b>a@x</b>"


def test_the_same_as_jinjas_own_newstyle_gettext() -> None:
    theirs = jinja2.Environment(
        loader=jinja2.DictLoader(SOURCES),
        autoescape=jinja2.select_autoescape(["html"]),
        extensions=["jinja2.ext.i18n"],
    )
    theirs.install_null_translations(newstyle=True)  # type: ignore[attr-defined]
    values = {"email": "<b>a@x</b>", "count": 1, "who": "A & B"}
    for name in SOURCES:
        assert render(name, **values) == theirs.get_template(name).render(**values)


@pytest.mark.parametrize(
    ("locale", "expected"),
    [("es", "Sesión iniciada como a&amp;b@x"), ("de", "Angemeldet als a&amp;b@x")],
)
def test_the_current_locale_is_used(locale: str, expected: str) -> None:
    catalogs = i18n.Catalogs(supported=["en", "es", "de"])
    env = environment()
    with i18n.use_locale(catalogs, locale):
        out = env.get_template("page.html").render(email="a&b@x", count=1, who="x")
    assert out.split("|")[0] == expected
    assert out.split("|")[5] != "Dismiss"  # gettext() too
