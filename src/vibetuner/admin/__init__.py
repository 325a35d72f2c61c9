"""The admin: a back office on starlette-admin for users, files, sessions, jobs and app models.

``AdminFeature`` is cheap to import; starlette-admin itself is imported on the first
request to ``/admin`` by an admin, so apps that never open it never pay for it.
"""

from vibetuner.admin.feature import AdminFeature
from vibetuner.admin.paths import ADMIN_PATH

__all__ = ["ADMIN_PATH", "AdminFeature"]
