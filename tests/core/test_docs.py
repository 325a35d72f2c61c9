"""The README must document every setting, so the configuration table cannot drift."""

from __future__ import annotations

from pathlib import Path

from vibetuner.config import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_lists_every_environment_variable():
    text = README.read_text(encoding="utf-8")
    missing = [name.upper() for name in Settings.model_fields if f"`{name.upper()}`" not in text]
    assert missing == []
