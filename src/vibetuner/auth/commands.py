"""``vibetuner auth ...``: what an operator does for a user who cannot do it themselves.

A user who lost both the phone with their authenticator app and their recovery codes
cannot sign in, and no page can help them without opening a way around the second
factor. The operator, who can reach the app's database, turns the codes off here after
checking who is asking; the user then signs in with an email link or a provider and
can turn two-factor codes on again.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

commands = typer.Typer(help="Sign-in: help a user who is locked out.", no_args_is_help=True)
out = Console()


@commands.command("two-factor-off")
def two_factor_off(
    email: Annotated[str, typer.Argument(help="The user's email address.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Turn off a user's two-factor codes (lost phone and recovery codes).

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
            path="vibetuner auth two-factor-off",
        )
