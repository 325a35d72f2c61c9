"""Where the admin lives and where its gate leaves the signed-in admin."""

ADMIN_PATH = "/admin"
# Where the gate leaves the signed-in admin for the views (read by the auth provider).
SCOPE_ADMIN = "vibetuner.admin_user"
