"""Beanie beyond its public API: declared indexes, and the migration runner's database.

Why, for each:

- ``vibetuner db indexes --check`` compares the indexes a model declares with the
  database's without building them. Beanie builds them in ``init_beanie`` and has no
  public way to list them; these helpers read them the way ``init_beanie`` does, from
  ``beanie.odm.utils`` and ``beanie.odm.fields.IndexModelField``.
- Beanie's migration runner reads its client and database from class attributes of
  ``beanie.migrations.database.DBHandler``; its public ``set_db`` opens a new client from
  a URL, which cannot reach the in-memory development database (and would open a second
  pool to a real one). ``use_for_migrations`` sets the two attributes.

Checked by ``tests/core/test_compat_beanie.py``.
"""

from __future__ import annotations

from typing import Any

from beanie import Document
from beanie.migrations.database import DBHandler
from beanie.odm.fields import IndexModelField
from beanie.odm.utils.pydantic import get_model_fields
from beanie.odm.utils.typing import get_index_attributes
from pymongo import IndexModel


def declared_indexes(model: type[Document]) -> list[Any]:
    """The indexes ``model`` declares (``Settings.indexes``, ``Indexed`` fields), as Beanie does."""
    from_fields = []
    for name, field in get_model_fields(model).items():  # type: ignore[no-untyped-call]
        attrs = get_index_attributes(field)
        if attrs is not None:
            from_fields.append(
                IndexModelField(IndexModel([(field.alias or name, attrs[0])], **attrs[1]))
            )
    merged: list[Any] = IndexModelField.merge_indexes(
        from_fields, list(model.get_settings().indexes)
    )
    return merged


def present_indexes(index_information: dict[str, Any]) -> list[Any]:
    """A collection's ``index_information()`` as Beanie's comparable index objects."""
    present: list[Any] = IndexModelField.from_pymongo_index_information(index_information)
    return present


def use_for_migrations(client: Any, database: Any) -> None:
    """Make Beanie's migration runner work on ``client`` and ``database``."""
    DBHandler.client = client  # type: ignore[attr-defined]
    DBHandler.database = database  # type: ignore[attr-defined]
