"""The README must document every setting, so the configuration table cannot drift."""

from __future__ import annotations

from pathlib import Path

from vibetuner.config import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_lists_every_environment_variable():
    text = README.read_text(encoding="utf-8")
    missing = [name.upper() for name in Settings.model_fields if f"`{name.upper()}`" not in text]
    assert missing == []


def test_the_readme_table_of_the_in_memory_database_is_generated():
    from vibetuner.mongo_memory import UNSUPPORTED, unsupported_table

    assert unsupported_table() in README.read_text(encoding="utf-8")
    # Each loud refusal has its test on both backends in test_database_gaps.py.
    refusals = {"collation", "transactions", "text", "array_sort", "array_filters", "let"}
    assert refusals | {"views", "expr"} <= {key for key, *_ in UNSUPPORTED}
