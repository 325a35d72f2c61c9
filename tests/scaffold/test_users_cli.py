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


HOLD_DATABASE = """
import asyncio, sys
from pathlib import Path
from vibetuner.mongo_memory_client import create_memory_client
from vibetuner.mongo_devfile import open_dev_database

async def main():
    store = await open_dev_database(create_memory_client(), Path(sys.argv[1]))
    assert store.owner
    print("holding", flush=True)
    await asyncio.sleep(120)

asyncio.run(main())
"""


def test_commands_that_write_refuse_while_the_dev_server_holds_the_database(
    tmp_path: Path,
) -> None:
    root = scaffold(tmp_path / "app", "package_name=held_app")
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MONGODB_", "REDIS_"))}
    env.update(
        {
            "ENVIRONMENT": "development",
            "DATA_DIR": str(data),
            # The project's package first, then whatever vibetuner the caller runs.
            "PYTHONPATH": os.pathsep.join(
                [str(root / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]
            ),
            "COLUMNS": "200",
        }
    )

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "vibetuner.cli", *args],
            cwd=root, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    made = subprocess.run(
        [sys.executable, "-c", MAKE_USERS], cwd=root, env=env, capture_output=True, text=True
    )
    assert made.returncode == 0, made.stderr
    # What the dev server does: it holds the development database while it runs.
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_DATABASE, str(data)],
        cwd=root, env=env, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        for args in (
            ("users", "promote", "ada@example.com"),
            ("users", "demote", "ada@example.com"),
            ("jobs", "purge", "--yes"),
            ("db", "indexes"),
            ("db", "migrate"),
            ("blobs", "check", "--delete"),
        ):
            refused = cli(*args)
            assert refused.returncode == 2, (args, refused.stdout, refused.stderr)
            assert "in use by another process" in " ".join(refused.stderr.split()), args
        # Reading still works, and says the data is the last saved state.
        listed = cli("users", "list")
        assert listed.returncode == 0 and "ada@example.com" in listed.stdout
    finally:
        holder.kill()
        holder.wait()
    promoted = cli("users", "promote", "ada@example.com")
    assert promoted.returncode == 0, promoted.stderr
    assert "ada@example.com" in cli("users", "list", "--role", "admin").stdout
