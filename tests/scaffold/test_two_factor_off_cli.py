"""``vibetuner users two-factor-off``: an operator unlocks a user who lost phone and codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.scaffold.conftest import scaffold

MAKE_LOCKED_OUT_USER = """
import asyncio
from vibetuner.auth.sessions import start_session
from vibetuner.cli.app_session import running_app
from vibetuner.config import Settings
from vibetuner.models import UserModel
from vibetuner.models.mixins import utcnow
from vibetuner.models.two_factor import TwoFactorSecret

async def main():
    async with running_app():
        ada = await UserModel(email="ada@example.com", email_verified_at=utcnow()).insert()
        await UserModel(email="bob@example.com", email_verified_at=utcnow()).insert()
        await TwoFactorSecret(
            user_id=ada.id, secret="fernet:x", confirmed_at=utcnow(),
            recovery_codes=["a" * 64], created_at=utcnow(),
        ).insert()
        await start_session(ada, Settings())

asyncio.run(main())
"""

READ_STATE = """
import asyncio, json
from vibetuner.cli.app_session import running_app
from vibetuner.models import UserModel
from vibetuner.models.audit import AuditLog
from vibetuner.models.session import UserSession
from vibetuner.models.two_factor import TwoFactorSecret

async def main():
    async with running_app():
        ada = await UserModel.find_one({"email": "ada@example.com"})
        entries = await AuditLog.find({"action": "two_factor_off_by_operator"}).to_list()
        print(json.dumps({
            "secrets": await TwoFactorSecret.find({"user_id": ada.id}).count(),
            "sessions": await UserSession.find({"user_id": ada.id}).count(),
            "audit": [[e.target_id, e.target_label, e.method] for e in entries],
            "ada": str(ada.id),
        }))

asyncio.run(main())
"""


def test_two_factor_off_unlocks_the_user_ends_their_sessions_and_is_audited(
    tmp_path: Path,
) -> None:
    root = scaffold(tmp_path / "app", "package_name=locked_app")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MONGODB_", "REDIS_"))}
    env.update(
        {
            "ENVIRONMENT": "development",
            "DATA_DIR": str(tmp_path / "data"),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(root / "src"), env.get("PYTHONPATH")])),
            "COLUMNS": "200",
        }
    )

    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            args, cwd=root, env=env, input=stdin, capture_output=True, text=True, timeout=120
        )

    def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return run(sys.executable, "-m", "vibetuner.cli", "users", *args, stdin=stdin)

    def state() -> dict[str, object]:
        read = run(sys.executable, "-c", READ_STATE)
        assert read.returncode == 0, read.stderr
        return json.loads(read.stdout.strip().splitlines()[-1])

    made = run(sys.executable, "-c", MAKE_LOCKED_OUT_USER)
    assert made.returncode == 0, made.stderr

    # Refusals change nothing and say why, with an exit code that is not 0.
    assert cli("two-factor-off", "not-an-address", "--yes").returncode == 2
    missing = cli("two-factor-off", "nobody@example.com", "--yes")
    assert missing.returncode == 2 and "no user has the address" in missing.stderr
    off_already = cli("two-factor-off", "bob@example.com", "--yes")
    assert off_already.returncode == 2
    assert "has no two-factor codes turned on" in " ".join(off_already.stderr.split())
    declined = cli("two-factor-off", "ada@example.com", stdin="n\n")
    assert declined.returncode == 1 and "nothing changed" in declined.stderr
    assert state()["secrets"] == 1 and state()["sessions"] == 1

    done = cli("two-factor-off", "ADA@example.com", stdin="y\n")
    assert done.returncode == 0, done.stderr
    assert "Two-factor codes are off for ada@example.com" in " ".join(done.stdout.split())
    after = state()
    assert after["secrets"] == 0
    assert after["sessions"] == 0
    assert after["audit"] == [[after["ada"], "ada@example.com", "CLI"]]

    # Run twice, the second time says there is nothing to turn off.
    again = cli("two-factor-off", "ada@example.com", "--yes")
    assert again.returncode == 2
