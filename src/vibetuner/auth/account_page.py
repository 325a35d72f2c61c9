"""The account page: name and picture, linked providers, sessions, and deleting the account.

Every action is a plain form post that redirects back to ``/account`` with a flash
message, so the page works without JavaScript; an htmx request gets the changed
section of the same template instead (``render(..., block=...)``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response

from vibetuner.auth import accounts, sessions
from vibetuner.auth.account_sections import PAGE, answer, page_values
from vibetuner.auth.fresh_factor import require_fresh_second_factor
from vibetuner.auth.impersonation import refuse_while_viewing_as
from vibetuner.auth.session_auth import RequireUser, logout, this_session
from vibetuner.auth.signin import AuthService
from vibetuner.blobs.jobs import file_remover
from vibetuner.blobs.store import BlobStore
from vibetuner.errors import BlobTooLarge
from vibetuner.i18n import N_
from vibetuner.i18n import gettext as _
from vibetuner.web.body_limits import body_limit
from vibetuner.web.context import Context
from vibetuner.web.flash import flash
from vibetuner.web.htmx import hx_redirect, is_htmx
from vibetuner.web.pages import problem, render

# The picture form: the picture plus the multipart framing and the CSRF field.
FORM_LIMIT = accounts.PICTURE_MAX_SIZE + 64 * 1024

router = APIRouter(
    prefix="/account",
    tags=["account"],
    include_in_schema=False,
    route_class=body_limit(FORM_LIMIT),
)


@router.get("", name="account_page")
async def account_page(request: Request, context: Context, user: RequireUser) -> Response:
    """The signed-in user's account."""
    return render(request, PAGE, await page_values(request, context, user))


@router.post("/profile", name="account_profile")
async def update_profile(
    request: Request,
    context: Context,
    user: RequireUser,
    name: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Change the display name."""
    await accounts.rename(user, name)
    flash(request, _("Your name was saved."))
    return await answer(request, context, user, "profile")


@router.post("/picture", name="account_picture")
async def upload_picture(
    request: Request,
    context: Context,
    user: RequireUser,
    picture: Annotated[UploadFile, File()],
) -> Response:
    """Replace the profile picture (PNG, JPEG, GIF or WebP, at most 2 MiB)."""
    data = await picture.read(accounts.PICTURE_MAX_SIZE + 1)
    if not data:
        return problem(
            request, 400, N_("No picture"), N_("Choose an image file first."), code="bad_upload"
        )
    if len(data) > accounts.PICTURE_MAX_SIZE:
        raise BlobTooLarge(accounts.PICTURE_MAX_SIZE)
    await accounts.set_picture(user, context.get(BlobStore), data, picture.filename or "")
    flash(request, _("Your picture was updated."))
    return await answer(request, context, user, "profile")


@router.post("/picture/remove", name="account_picture_remove")
async def remove_picture(request: Request, context: Context, user: RequireUser) -> Response:
    """Go back to the initial-letter avatar."""
    await accounts.remove_picture(user, context.find(BlobStore))
    flash(request, _("Your picture was removed."))
    return await answer(request, context, user, "profile")


@router.post(
    "/providers/{provider}/unlink",
    name="account_unlink",
    dependencies=[Depends(refuse_while_viewing_as), Depends(require_fresh_second_factor)],
)
async def unlink(request: Request, context: Context, user: RequireUser, provider: str) -> Response:
    """Remove a linked sign-in provider (never the last way to sign in)."""
    if not await accounts.unlink_provider(
        user, provider, email_sign_in=context.find(AuthService) is not None
    ):
        return problem(
            request, 404, N_("Not linked"), N_("That provider is not linked."), code="not_linked"
        )
    flash(request, _("The provider was unlinked; it no longer signs you in."))
    return await answer(request, context, user, "providers")


@router.post(
    "/sessions/{session_id}/revoke",
    name="account_revoke_session",
    dependencies=[Depends(refuse_while_viewing_as)],
)
async def revoke(
    request: Request, context: Context, user: RequireUser, session_id: str
) -> Response:
    """Sign one browser out; this one is sent to the home page."""
    this = this_session(request)
    if user.id is None or not await sessions.revoke_session(user.id, session_id):
        return problem(
            request,
            404,
            N_("No such session"),
            N_("That session has already ended."),
            code="session_not_found",
        )
    if this is not None and this.public_id == session_id:
        await logout(request)
        flash(request, _("This browser was signed out."))
        return hx_redirect("/") if is_htmx(request) else RedirectResponse("/", status_code=303)
    flash(request, _("That browser was signed out."))
    return await answer(request, context, user, "sessions")


@router.post(
    "/delete",
    name="account_delete",
    dependencies=[Depends(refuse_while_viewing_as), Depends(require_fresh_second_factor)],
)
async def delete(
    request: Request,
    context: Context,
    user: RequireUser,
    confirm_email: Annotated[str, Form(max_length=320)] = "",
) -> Response:
    """Delete the account and everything of it, once the user typed their address."""
    if confirm_email.strip().lower() != user.email:
        return problem(
            request,
            422,
            N_("Not deleted"),
            N_("Type your email address exactly to confirm the deletion."),
            code="confirmation_mismatch",
            link=(request.app.url_path_for("account_page"), N_("Back to your account")),
        )
    await accounts.delete_account(
        user, context.find(BlobStore), context.user_data_cleaners, remove_file=file_remover(context)
    )
    await logout(request)
    flash(request, _("Your account and everything in it were deleted."), "info")
    return hx_redirect("/") if is_htmx(request) else RedirectResponse("/", status_code=303)
