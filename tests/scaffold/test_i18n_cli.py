"""``vibetuner i18n``: the catalog workflow on a scaffolded app, and its clear refusals."""

from __future__ import annotations

from pathlib import Path

from tests.scaffold.conftest import run_cli, scaffold
from vibetuner.i18n import catalog_ids, catalog_problems


def said(result) -> str:
    return " ".join(result.output.split())


def test_extract_init_update_compile(tmp_path: Path) -> None:
    root = scaffold(tmp_path / "app")
    locales = root / "src" / "my_app" / "locales"
    (root / "src" / "my_app" / "templates" / "extra.html").write_text(
        '{% extends "base.html" %}{% block content %}{{ _("A brand new string") }}{% endblock %}'
    )

    extracted = run_cli("i18n", "extract", cwd=root)
    assert extracted.exit_code == 0, extracted.output
    assert "A brand new string" in catalog_ids(locales / "messages.pot")

    # (The app ships es and de: a third language is started.)
    started = run_cli("i18n", "init", "fr", cwd=root)
    assert started.exit_code == 0, started.output
    french = locales / "fr" / "LC_MESSAGES" / "messages.po"
    assert len(catalog_problems(french)) == len(catalog_ids(french))  # all to translate
    again = run_cli("i18n", "init", "fr", cwd=root)
    assert again.exit_code == 2 and "already has a catalog" in said(again)

    updated = run_cli("i18n", "update", cwd=root)
    assert updated.exit_code == 0, updated.output
    for language in ("es", "de"):
        catalog = locales / language / "LC_MESSAGES" / "messages.po"
        assert catalog_problems(catalog) == ["untranslated: 'A brand new string'"]

    compiled = run_cli("i18n", "compile", cwd=root)
    assert compiled.exit_code == 0, compiled.output
    assert "es: 1 to translate" in said(compiled) and "de: 1 to translate" in said(compiled)
    assert (locales / "fr" / "LC_MESSAGES" / "messages.mo").exists()


def test_refusals_are_one_line(tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "pyproject.toml").write_text('[tool.vibetuner]\napp = "x.app:app"\n')
    result = run_cli("i18n", "extract", cwd=bare)
    assert result.exit_code == 2 and "no catalog folder" in said(result)

    root = scaffold(tmp_path / "app")
    unknown = run_cli("i18n", "init", "xx-yy", cwd=root)
    assert unknown.exit_code == 2 and "not a known locale" in said(unknown)
    (root / "src" / "my_app" / "locales" / "messages.pot").unlink()
    missing = run_cli("i18n", "update", cwd=root)
    assert missing.exit_code == 2 and "run `vibetuner i18n extract` first" in said(missing)
