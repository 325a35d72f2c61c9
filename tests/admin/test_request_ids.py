"""An audit entry names the request that made the change, to find its log lines."""

from __future__ import annotations

from typing import Any

from tests.admin.conftest import Memo, as_form, form_fields, make_user, replace_field
from vibetuner.models.audit import AuditLog


async def test_an_admin_edit_is_audited_with_its_request_id(
    admin_app: Any, browser_for: Any
) -> None:
    admin = await make_user("auditor@example.com", roles=["admin"])
    memo = await Memo(title="Old title").insert()
    http = await browser_for(admin)
    edit_page = (await http.get(f"/admin/memo/edit?pk={memo.id}")).text
    fields = replace_field(form_fields(edit_page, "title"), "title", "New title")
    saved = await http.post(f"/admin/memo/edit?pk={memo.id}", data=as_form(fields))
    assert saved.status_code in (200, 303), saved.text[:500]

    (entry,) = await AuditLog.find({"action": "edit"}).to_list()
    assert entry.request_id == saved.headers["X-Request-ID"]
    assert len(entry.request_id) == 32
