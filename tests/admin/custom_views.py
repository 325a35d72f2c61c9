"""An app's own admin view, named by a "module:attribute" string (imported on first use)."""

from starlette_admin import StringField

from tests.admin.conftest import Memo
from vibetuner.admin.views import AuditedModelView


class MemoBoard(AuditedModelView):
    """Memos with only their title and body."""

    fields = [StringField("title"), StringField("body")]
    searchable_fields = ["title"]


MEMOS = MemoBoard(Memo, key="memo-board", menu_label="Memo board")
