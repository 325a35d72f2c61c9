"""``vibetuner users list|promote|demote|two-factor-off``: who holds which role, and
unlocking a user who lost their second factor.

The first admin is made here: ``vibetuner users promote you@example.com`` once you
have signed in. The database is the app's (``MONGODB_URL``, or the development one).
"""

from __future__ import annotations

import re
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

app = typer.Typer(help="Users and their roles.", no_args_is_help=True)
out = Console()

RoleOption = Annotated[str, typer.Option(help="The role (default: admin).")]


def _role(value: str) -> str:
    from vibetuner.cli.app_session import fail
    from vibetuner.models.user import ROLE_PATTERN

    if not re.fullmatch(ROLE_PATTERN, value):
        raise fail(f"{value!r} is not a role name: lower-case letters, digits, - and _")
    return value


@app.command(name="list")
def list_users(
    role: Annotated[str | None, typer.Option(help="Only users with this role.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many.")] = 100,
) -> None:
    """Users, most recently signed in first, with their roles."""
    import asyncio

    async def main() -> None:
        from vibetuner.cli.app_session import running_app
        from vibetuner.models.user import UserModel

        query = {"roles": _role(role)} if role else {}
        async with running_app():
            users = await UserModel.find(query).sort("-last_login_at").limit(limit).to_list()
        if not users:
            out.print("No users." if not role else f"No users with the role {role}.")
            return
        table = Table("email", "name", "roles", "active", "last sign-in (UTC)")
        for user in users:
            table.add_row(
                escape(user.email),
                escape(user.name or ""),
                ", ".join(user.roles),
                "yes" if user.is_active else "no",
                user.last_login_at.strftime("%Y-%m-%d %H:%M") if user.last_login_at else "never",
            )
        out.print(table)

    asyncio.run(main())


def _change(email: str, role: str, add: bool) -> None:
    import asyncio

    async def main() -> None:
        from vibetuner.cli.app_session import fail, running_app
        from vibetuner.models.user import UserModel, normalize_email

        try:
            address = normalize_email(email)
        except ValueError as exc:
            raise fail(f"{email!r} is not an email address: {exc}") from None
        async with running_app(writes=True):
            user = await UserModel.find_one({"email": address})
            if user is None:
                raise fail(f"no user has the address {address}; they must sign in once first")
            if add and user.email_verified_at is None:
                # Nobody has proven the address yet: the account may be someone else's
                # claim to it, and the role would go to whoever is signed in to it.
                raise fail(
                    f"{address} has not been proven yet; the role would go to whoever made "
                    "the account. They must sign in once with an email link first"
                )
            update = {"$addToSet": {"roles": role}} if add else {"$pull": {"roles": role}}
            await UserModel.get_pymongo_collection().update_one({"_id": user.id}, update)
        verb = "now has" if add else "no longer has"
        out.print(f"{address} {verb} the role {role}")

    asyncio.run(main())


@app.command()
def promote(
    email: Annotated[str, typer.Argument(help="The user's email address.")],
    role: RoleOption = "admin",
) -> None:
    """Give a user a role (admin by default)."""
    _change(email, _role(role), add=True)


@app.command()
def demote(
    email: Annotated[str, typer.Argument(help="The user's email address.")],
    role: RoleOption = "admin",
) -> None:
    """Take a role (admin by default) from a user."""
    _change(email, _role(role), add=False)


@app.command("two-factor-off")
def two_factor_off(
    email: Annotated[str, typer.Argument(help="The user's email address.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Turn off a locked-out user's two-factor codes.

    For a user who lost both the phone and the recovery codes.

    Deletes the user's authenticator secret and recovery codes, ends every session of
    the user, and records the change in the audit log.
    """
    import asyncio

    from vibetuner.cli.app_session import fail
    from vibetuner.models.user import normalize_email

    try:
        address = normalize_email(email)
    except ValueError as exc:
        raise fail(f"{email!r} is not an email address: {exc}") from None
    if not yes and not typer.confirm(
        f"Turn off two-factor codes for {address} and end all their sessions?"
    ):
        raise fail("nothing changed", code=1)
    asyncio.run(_two_factor_off(address))
    out.print(
        f"Two-factor codes are off for {address}; every session of theirs has ended. "
        "They can sign in with an email link and turn the codes on again."
    )


async def _two_factor_off(address: str) -> None:
    from vibetuner.auth.sessions import sign_out_everywhere
    from vibetuner.auth.two_factor_codes import enabled, remove
    from vibetuner.cli.app_session import fail, running_app
    from vibetuner.models.user import UserModel
    from vibetuner.services import audit

    async with running_app(writes=True):
        user = await UserModel.find_one({"email": address})
        if user is None:
            raise fail(f"no user has the address {address}")
        if not await enabled(user.id):
            raise fail(f"{address} has no two-factor codes turned on")
        await remove(user)
        await sign_out_everywhere(user)
        await audit.record(
            actor=None,
            action="two_factor_off_by_operator",
            target_type="user",
            target_id=user.id,
            target_label=address,
            method="CLI",
            path="vibetuner users two-factor-off",
        )
