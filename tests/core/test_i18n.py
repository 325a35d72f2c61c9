"""Every page and email in the user's language: catalogs, locale choice, formats."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from vibetuner.i18n import (
    FRAMEWORK_LOCALES,
    catalog_ids,
    catalog_problems,
    compiled_catalog_is_current,
    extract_messages,
)
from vibetuner.models import UserModel
from vibetuner.testing import follow_sign_in_link

SHIPPED = ("es", "de")
HTML = {"Accept": "text/html"}
SOURCE = Path(__file__).resolve().parents[2] / "src" / "vibetuner"
# One string known to be translated, per page, per language.
LOGIN = {
    "en": "Sign in to vibetuner",
    "es": "Inicia sesión en vibetuner",
    "de": "Bei vibetuner anmelden",
}


def po(language: str) -> Path:
    return FRAMEWORK_LOCALES / language / "LC_MESSAGES" / "vibetuner.po"


@pytest.mark.parametrize("language", SHIPPED)
def test_catalogs_translate_every_framework_string(language: str) -> None:
    assert catalog_problems(po(language)) == []
    used = extract_messages(SOURCE)
    known = catalog_ids(po(language))
    assert used - known == set(), "strings without a translation: run `just i18n`"
    assert known - used == set(), "translations of strings no longer used: run `just i18n`"
    template = catalog_ids(FRAMEWORK_LOCALES / "vibetuner.pot")
    assert template == used


@pytest.mark.parametrize("language", SHIPPED)
def test_compiled_catalogs_match_their_sources(language: str) -> None:
    assert compiled_catalog_is_current(po(language)), "run `just i18n`"


def test_a_compiled_catalog_from_another_babel_release_is_current(tmp_path: Path) -> None:
    # The header (Generated-By, dates) changes with every Babel release; messages decide.
    with open(po("es"), "rb") as handle:
        catalog = read_po(handle)
    catalog.version = "99"
    catalog.creation_date = catalog.revision_date = datetime(2001, 1, 1)
    copy = tmp_path / "vibetuner.po"
    copy.write_bytes(po("es").read_bytes())
    with open(copy.with_suffix(".mo"), "wb") as out:
        write_mo(out, catalog)
    compiled = copy.with_suffix(".mo")
    compiled.write_bytes(compiled.read_bytes().replace(b"By: Babel", b"By: Other"))
    assert compiled_catalog_is_current(copy)
    first = next(m for m in catalog if m.id and isinstance(m.id, str))
    first.string = "changed"
    with open(copy.with_suffix(".mo"), "wb") as out:
        write_mo(out, catalog)
    assert not compiled_catalog_is_current(copy)


def test_a_catalog_with_plural_entries_can_be_checked(tmp_path: Path) -> None:
    # Read back from a .mo, a plural entry's id and string are lists.
    source = tmp_path / "messages.po"
    source.write_text(
        'msgid ""\nmsgstr ""\n"Plural-Forms: nplurals=2; plural=(n != 1);\\n"\n\n'
        'msgid "%(num)d file"\nmsgid_plural "%(num)d files"\n'
        'msgstr[0] "%(num)d archivo"\nmsgstr[1] "%(num)d archivos"\n',
        encoding="utf-8",
    )
    with open(source, "rb") as handle:
        catalog = read_po(handle)
    with open(source.with_suffix(".mo"), "wb") as out:
        write_mo(out, catalog)
    assert compiled_catalog_is_current(source)
    source.write_text(source.read_text().replace('"%(num)d archivos"', '"%(num)d ficheros"'))
    assert not compiled_catalog_is_current(source)


def heading(html: str) -> str:
    return re.search(r"<h1>(.*?)</h1>", html, re.S).group(1).strip()


@pytest.mark.parametrize("language", ["en", *SHIPPED])
async def test_framework_pages_in_each_language(
    client: Any, signed_in_client: Any, outbox: Any, language: str
) -> None:
    headers = {**HTML, "Accept-Language": language}
    login = await client.get("/auth/login", headers=headers)
    assert heading(login.text) == LOGIN[language]
    assert f'<html lang="{language}"' in login.text

    sent = await client.post(
        "/auth/magic-link", data={"email": "i18n@example.com"}, headers=headers
    )
    inbox = {
        "en": "Check your inbox",
        "es": "Revisa tu bandeja de entrada",
        "de": "Sieh in deinem Posteingang nach",
    }
    assert heading(sent.text) == inbox[language]

    [message] = outbox.to("i18n@example.com")
    subject = {
        "en": "Your sign-in link",
        "es": "Tu enlace para iniciar sesión",
        "de": "Dein Anmeldelink",
    }
    assert message["Subject"].startswith(subject[language])
    body = message.get_body(("plain",)).get_content()
    expires = {
        "en": "The link works once",
        "es": "El enlace funciona una vez",
        "de": "Der Link funktioniert einmal",
    }
    assert expires[language] in body
    html_part = message.get_body(("html",)).get_content()
    assert expires[language] in html_part

    [link] = [url for url in outbox.links(message) if "/auth/magic-link/" in url]
    path = link.split("://", 1)[1].split("/", 1)[1]
    confirm = await client.get("/" + path, headers=headers)
    ask = {
        "en": "Sign in to vibetuner?",
        "es": "¿Iniciar sesión en vibetuner?",
        "de": "Bei vibetuner anmelden?",
    }
    assert heading(confirm.text) == ask[language]

    missing = await client.get("/nowhere", headers=headers)
    not_found = {"en": "Page not found", "es": "Página no encontrada", "de": "Seite nicht gefunden"}
    assert heading(missing.text) == not_found[language]

    account = await signed_in_client.get("/account", headers=headers)
    mine = {"en": "Your account", "es": "Tu cuenta", "de": "Dein Konto"}
    assert heading(account.text) == mine[language]
    device = {"en": "This device", "es": "Este dispositivo", "de": "Dieses Gerät"}
    assert device[language] in account.text


async def test_api_errors_stay_in_english(client: Any) -> None:
    answer = await client.get("/nowhere", headers={"Accept-Language": "de"})
    assert answer.json() == {"detail": "Not Found"}
    bad = await client.post(
        "/auth/magic-link", json={"email": ""}, headers={"Accept-Language": "es"}
    )
    assert bad.json()["detail"][0]["msg"] == "Enter your email address."


async def test_locale_precedence(client: Any, app: Any, user: Any, client_for: Any) -> None:
    def lang(page: Any) -> str:
        return re.search(r'<html lang="([^"]+)"', page.text).group(1)

    # Default, then the browser's header (an unsupported one falls back).
    assert lang(await client.get("/auth/login", headers=HTML)) == "en"
    header = {**HTML, "Accept-Language": "fr-CH, fr;q=0.9, de;q=0.7, *;q=0.5"}
    assert lang(await client.get("/auth/login", headers=header)) == "de"
    assert lang(await client.get("/auth/login", headers={**HTML, "Accept-Language": "ja"})) == "en"
    # The switch's cookie beats the header.
    await client.get("/auth/login", headers=HTML)
    switched = await client.post("/ui/locale", data={"locale": "es", "next": "/auth/login"})
    assert switched.status_code == 303 and "vt_locale=es" in switched.headers["set-cookie"]
    assert lang(await client.get("/auth/login", headers=header)) == "es"
    # A signed-in user's saved preference beats the cookie.
    await user.set({UserModel.locale: "de"})
    browser = await client_for(user)
    browser.cookies.set("vt_locale", "es")
    assert lang(await browser.get("/account", headers={**HTML, "Accept-Language": "es"})) == "de"
    assert (await browser.post("/ui/locale", data={"locale": "xx"})).status_code == 422


async def test_the_switch_saves_a_signed_in_users_choice(signed_in_client: Any, user: Any) -> None:
    await signed_in_client.get("/account", headers=HTML)
    answer = await signed_in_client.post("/ui/locale", data={"locale": "es"})
    assert answer.status_code == 303
    assert (await UserModel.get(user.id)).locale == "es"
    page = await signed_in_client.get("/account", headers={**HTML, "Accept-Language": "de"})
    assert heading(page.text) == "Tu cuenta"
    # Dates on pages follow the language: "ahora mismo" / "hace 2 minutos", and the full
    # date on hover, "3 de diciembre de 2026, 13:36:57 UTC".
    when = (
        r'<time datetime="[^"]+" title="\d{1,2} de \w+ de \d{4}, [^"]+">'
        r"(ahora mismo|hace [^<]+)</time>"
    )
    assert re.search(r"Último uso: " + when, page.text), page.text


async def test_emails_go_in_the_recipients_language(client: Any, outbox: Any) -> None:
    await UserModel(email="deutsch@example.com", locale="de").insert()
    await client.post(
        "/auth/magic-link",
        data={"email": "deutsch@example.com"},
        headers={**HTML, "Accept-Language": "es"},
    )
    [message] = outbox.to("deutsch@example.com")
    assert message["Subject"].startswith("Dein Anmeldelink")


async def test_first_sign_in_greets_in_the_page_language(client: Any, outbox: Any) -> None:
    spanish = {**HTML, "Accept-Language": "es"}
    await client.post("/auth/magic-link", data={"email": "nuevo@example.com"}, headers=spanish)
    [message] = outbox.to("nuevo@example.com")
    [link] = [url for url in outbox.links(message) if "/auth/magic-link/" in url]
    client.headers["Accept-Language"] = "es"
    await follow_sign_in_link(client, link)
    page = await client.get("/auth/login", headers=spanish)
    assert "¡Te damos la bienvenida! Tu cuenta está lista." in page.text


def test_a_translation_with_the_wrong_placeholder_is_reported(tmp_path: Path) -> None:
    broken = tmp_path / "broken.po"
    broken.write_text(
        'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=utf-8\\n"\n\n'
        '#, python-format\nmsgid "Hello %(name)s"\nmsgstr "Hola %(nombre)s"\n\n'
        'msgid "Bye"\nmsgstr ""\n\n#, fuzzy\nmsgid "Maybe"\nmsgstr "Quizás"\n'
    )
    problems = catalog_problems(broken)
    assert any("placeholders differ" in line and "nombre" in line for line in problems)
    assert "untranslated: 'Bye'" in problems and "fuzzy: 'Maybe'" in problems
