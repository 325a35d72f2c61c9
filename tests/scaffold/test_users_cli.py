"""``vibetuner users``: the roles of users, on the app's (development) database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.scaffold.conftest import scaffold

MAKE_USERS = """
import asyncio
from vibetuner.cli.app_session import running_app
from vibetuner.models import UserModel
from vibetuner.models.mixins import utcnow

async def main():
    async with running_app():
        await UserModel(email="ada@example.com", name="Ada", email_verified_at=utcnow()).insert()
        await UserModel(email="bob@example.com", email_verified_at=utcnow()).insert()
        # Made through a provider that did not verify the address: not proven.
        await UserModel(email="ceo@example.com").insert()

asyncio.run(main())
"""


def test_promote_list_and_demote(tmp_path: Path) -> None:
    root = scaffold(tmp_path / "app", "package_name=roles_app")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MONGODB_", "REDIS_"))}
    env.update(
        {
            "ENVIRONMENT": "development",
            "DATA_DIR": str(tmp_path / "data"),
            # The app's package first, then whatever the tests run with (this checkout).
            "PYTHONPATH": os.pathsep.join(filter(None, [str(root / "src"), env.get("PYTHONPATH")])),
            "COLUMNS": "200",
        }
    )

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(args, cwd=root, env=env, capture_output=True, text=True, timeout=120)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return run(sys.executable, "-m", "vibetuner.cli", "users", *args)

    made = run(sys.executable, "-c", MAKE_USERS)
    assert made.returncode == 0, made.stderr

    missing = cli("promote", "nobody@example.com")
    assert missing.returncode == 2
    assert "they must sign in once first" in " ".join(missing.stderr.split())
    unproven = cli("promote", "ceo@example.com")
    assert unproven.returncode == 2
    assert "must sign in once with an email link first" in " ".join(unproven.stderr.split())
    bad = cli("promote", "ada@example.com", "--role", "Root!")
    assert bad.returncode == 2 and "is not a role name" in bad.stderr

    promoted = cli("promote", "ADA@example.com")
    assert promoted.returncode == 0, promoted.stderr
    assert "ada@example.com now has the role admin" in promoted.stdout
    again = cli("promote", "ada@example.com")  # idempotent
    assert again.returncode == 0

    admins = cli("list", "--role", "admin")
    assert "ada@example.com" in admins.stdout and "bob@example.com" not in admins.stdout
    everyone = cli("list")
    assert "bob@example.com" in everyone.stdout

    demoted = cli("demote", "ada@example.com")
    assert demoted.returncode == 0 and "no longer has the role admin" in demoted.stdout
    assert "No users with the role admin." in cli("list", "--role", "admin").stdout
