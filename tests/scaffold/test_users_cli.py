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

async def main():
    async with running_app():
        await UserModel(email="ada@example.com", name="Ada").insert()
        await UserModel(email="bob@example.com").insert()

asyncio.run(main())
"""


def test_promote_list_and_demote(tmp_path: Path) -> None:
    root = scaffold(tmp_path / "app", "package_name=roles_app")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MONGODB_", "REDIS_"))}
    env.update(
        {
            "ENVIRONMENT": "development",
            "DATA_DIR": str(tmp_path / "data"),
            "PYTHONPATH": str(root / "src"),
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
