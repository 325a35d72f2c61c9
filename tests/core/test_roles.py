"""Roles on users: absent in documents stored before roles existed, read as none."""

from __future__ import annotations

from typing import Any

from vibetuner.models import UserModel


async def test_roles_default_to_none_and_old_documents_load(vibetuner_db: Any) -> None:
    await UserModel.get_pymongo_collection().insert_one(
        {"email": "old@example.com", "is_active": True, "session_version": 1}
    )
    old = await UserModel.find_one({"email": "old@example.com"})
    assert old is not None and old.roles == [] and not old.is_admin

    admin = UserModel(email="root@example.com", roles=["admin"])
    await admin.insert()
    loaded = await UserModel.get(admin.id)
    assert loaded is not None and loaded.is_admin and loaded.has_role("admin")
    assert not loaded.has_role("editor")
