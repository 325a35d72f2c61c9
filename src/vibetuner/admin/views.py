"""The admin's views: ``AuditedModelView`` (the base for every view) and vibetuner's own.

Every write made through a view -- create, edit, delete, or an action -- lands in the
audit trail with the fields it changed. Fields whose names say they hold a secret
(``access_token``, ``token_hash``, ...) are never shown, exported, imported or edited.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from beanie import Link
from pymongo.errors import DuplicateKeyError
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette_admin import (
    BooleanField,
    ComputedField,
    DateTimeField,
    EmailField,
    HasOne,
    IntegerField,
    JSONField,
    ListField,
    StringField,
    TextAreaField,
    action,
    flash,
    row_action,
)
from starlette_admin.actions import ActionSelection
from starlette_admin.contrib.beanie import ModelView
from starlette_admin.contrib.beanie.converters import BeanieModelConverter
from starlette_admin.converters import converts
from starlette_admin.exceptions import ActionFailed, FormValidationError
from starlette_admin.export.csv import CsvExporter
from starlette_admin.fields import BaseField

from vibetuner.admin.paths import SCOPE_ADMIN
from vibetuner.admin.previews import preview
from vibetuner.auth.accounts import delete_account
from vibetuner.auth.impersonation import start_viewing_as
from vibetuner.auth.sessions import ip_prefix, sign_out_everywhere
from vibetuner.auth.signin import claim_mailbox
from vibetuner.blobs.jobs import file_remover
from vibetuner.blobs.store import BlobStore
from vibetuner.errors import (
    BlobStorageError,
    CannotViewAs,
    DuplicateEmail,
    DuplicateKey,
    SecondFactorRequired,
)
from vibetuner.jobs.feature import requeue_failed
from vibetuner.models.api_token import ApiToken
from vibetuner.models.audit import AuditLog
from vibetuner.models.blob import Blob
from vibetuner.models.email_verification import EmailVerificationToken
from vibetuner.models.failed_job import FailedJob
from vibetuner.models.oauth import OAuthAccount
from vibetuner.models.session import UserSession
from vibetuner.models.user import ADMIN_ROLE, ROLE_PATTERN, UserModel, normalize_email
from vibetuner.services import audit
from vibetuner.user_agents import browser_name
from vibetuner.web.client_address import client_address
from vibetuner.web.context import get_context

# Fields that name a record, in the order tried.
LABEL_FIELDS = ("title", "name", "email", "filename")
# Labels for the fields vibetuner's mixins give every model.
READABLE_LABELS = {
    "id": "ID",
    "db_insert_dt": "Created",
    "db_update_dt": "Updated",
    "deleted_at": "Deleted",
}
# Links to vibetuner's documents point at vibetuner's views (starlette-admin would name
# them after the class: "user-model", "blob").
VIEW_KEYS = {"user-model": "users", "blob": "blobs", "o-auth-account": "oauth-accounts"}


class LinkConverter(BeanieModelConverter):
    """starlette-admin's converter, with links to vibetuner's documents going to its views."""

    @converts(Link)
    def conv_link(self, *args: Any, **kwargs: Any) -> BaseField:
        field = super().conv_link(*args, **kwargs)
        key = getattr(field, "key", None)
        if isinstance(key, str) and key in VIEW_KEYS:
            field.key = VIEW_KEYS[key]  # type: ignore[attr-defined]
        return field


def acting_admin(request: Request) -> UserModel:
    """The admin making this request (the gate put them in the scope)."""
    admin: UserModel = request.scope[SCOPE_ADMIN]
    return admin


class AuditedModelView(ModelView[Any]):
    """A Beanie ``ModelView`` whose every write is recorded in the audit trail.

    ``AuditedModelView(Note)`` is a complete view; subclass it to choose fields, add
    actions, or change how a record is deleted (:meth:`delete_object`). CSV exports
    escape cells that a spreadsheet would run as formulas (``=``, ``+``, ``-``, ``@``):
    users choose their own names.
    """

    exporters = [CsvExporter(escape_formulas=True), "json"]

    def __init__(self, document: type[Any], **kwargs: Any) -> None:
        secret = [name for name in document.model_fields if audit.is_secret_field(name)]
        for attribute in (
            "exclude_fields_from_list",
            "exclude_fields_from_detail",
            "exclude_fields_from_create",
            "exclude_fields_from_edit",
            "exclude_fields_from_export",
            "exclude_fields_from_import",
        ):
            setattr(self, attribute, [*getattr(self, attribute), *secret])
        if self.fields:
            self.fields = [f for f in self.fields if _field_name(f) not in secret]
        kwargs.setdefault("converter", LinkConverter())
        # Every menu entry has an icon, so the labels line up.
        kwargs.setdefault("icon", getattr(self, "icon", None) or "fa-solid fa-table")
        super().__init__(document, **kwargs)
        for field in self.fields:
            # starlette-admin labels a field by its name ("Db insert dt").
            if field.label == field.name.replace("_", " ").capitalize():
                field.label = READABLE_LABELS.get(field.name, field.label)

    async def repr(self, obj: Any, request: Request) -> str:
        """A record's name in pages and the audit log: ``__admin_repr__``, else its
        ``title``, ``name``, ``email`` or ``filename``, else its id."""
        if hasattr(obj, "__admin_repr__"):
            return str(await super().repr(obj, request))
        for attribute in LABEL_FIELDS:
            value = getattr(obj, attribute, None)
            if isinstance(value, str) and value:
                return value
        return str(await self.get_pk_value(request, obj))

    @property
    def audit_type(self) -> str:
        """The name entries of this view carry as ``target_type`` (the collection)."""
        return str(self.document.get_collection_name() or self.document.__name__)

    async def record(
        self,
        request: Request,
        action_name: str,
        obj: Any,
        changes: dict[str, Any] | None = None,
    ) -> AuditLog:
        """Add an audit entry by the acting admin about ``obj``."""
        # The client behind TRUSTED_PROXIES, as every other record names it.
        client = client_address(request)
        return await audit.record(
            actor=acting_admin(request),
            action=action_name,
            target_type=self.audit_type,
            target_id=await self.get_pk_value(request, obj),
            target_label=str(await self.repr(obj, request))[:300],
            changes=changes,
            ip_prefix=ip_prefix(client),
        )

    async def create(self, request: Request, data: dict[str, Any]) -> Any:
        obj = await super().create(request, data)
        await self.record(request, "create", obj, audit.diff({}, audit.snapshot(obj)))
        return obj

    async def edit(self, request: Request, pk: Any, data: dict[str, Any]) -> Any:
        before = audit.snapshot(await self.find_by_pk(request, pk))
        obj = await super().edit(request, pk, data)
        changes = audit.diff(before, audit.snapshot(obj))
        if changes:
            await self.record(request, "edit", obj, changes)
        return obj

    async def delete(self, request: Request, pks: list[Any]) -> int | None:
        count = 0
        for pk in pks:
            obj = await self.find_by_pk(request, pk)
            if obj is None:
                continue
            await self.before_delete(request, obj)
            before = audit.snapshot(obj)
            await self.delete_object(request, obj)
            await self.record(request, "delete", obj, audit.diff(before, {}))
            count += 1
        return count

    async def delete_object(self, request: Request, obj: Any) -> None:
        """Remove one record (a plain delete; views with more to clean up override it)."""
        await obj.delete()

    async def handle_exception(self, request: Request, exc: Exception) -> None:
        """A write that breaks a unique index is a form error on the field, not a 500."""
        if isinstance(exc, DuplicateEmail):
            raise FormValidationError({"email": "Another user has this email address."}) from exc
        if isinstance(exc, (DuplicateKey, DuplicateKeyError)):
            cause = exc if isinstance(exc, DuplicateKeyError) else exc.__cause__
            details = getattr(cause, "details", None) or {}
            fields = list((details.get("keyPattern") or {"_": 1}).keys())
            raise FormValidationError(
                {fields[0]: "Another record already has this value."}
            ) from exc
        await super().handle_exception(request, exc)

    def can_import(self, request: Request) -> bool:
        # An import creates and edits records: only where both are allowed.
        return self.can_create(request) and self.can_edit(request)


def _field_name(field: Any) -> str:
    return field if isinstance(field, str) else str(getattr(field, "name", ""))


def _context(request: Request) -> Any:

    return get_context(request)


# --- users -------------------------------------------------------------------------------


# The user's text fields that may be None ("no name", "follow the browser's language").
OPTIONAL_TEXT = ("name", "locale")


class UserView(AuditedModelView):
    """Users: search by email or name; (de)activate, verify, sign out, view as, delete."""

    label = "Users"
    icon = "fa-solid fa-users"
    fields = [
        EmailField("email", required=True),
        StringField("name"),
        BooleanField("is_active", label="Active"),
        ListField(StringField("roles")),
        DateTimeField("email_verified_at", label="Email verified", read_only=True),
        DateTimeField("last_login_at", label="Last sign-in", read_only=True),
        StringField("locale"),
        DateTimeField("db_insert_dt", label="Created", read_only=True),
    ]
    exclude_fields_from_create = ["last_login_at", "db_insert_dt"]
    # (The list fits a 1280 px screen; the rest is on each user's page.)
    exclude_fields_from_list = ["locale", "email_verified_at"]
    searchable_fields = ["email", "name"]
    sortable_fields = ["email", "name", "db_insert_dt", "last_login_at", "is_active"]
    fields_default_sort = [("db_insert_dt", True)]

    def __init__(self) -> None:
        super().__init__(UserModel, key="users", menu_label="Users", icon=self.icon)

    def can_create(self, request: Request) -> bool:
        return False  # people sign up by signing in; `vibetuner users` makes admins

    async def repr(self, obj: Any, request: Request) -> str:
        return str(getattr(obj, "email", obj))

    async def edit(self, request: Request, pk: Any, data: dict[str, Any]) -> Any:
        target = await self.find_by_pk(request, pk)
        if target is not None and target.id == acting_admin(request).id:
            # An admin who locks themselves out needs a shell to get back in.
            if "is_active" in data and not data["is_active"]:
                raise FormValidationError({"is_active": "You cannot deactivate yourself."})
            if "roles" in data and ADMIN_ROLE not in (data["roles"] or []):
                raise FormValidationError({"roles": "You cannot remove your own admin role."})
        for name in OPTIONAL_TEXT:
            # An empty box means "none" (a form cannot send None): not a change to "".
            if name in data and not str(data[name] or "").strip():
                data[name] = None
        added = set(data.get("roles") or []) - set(target.roles if target is not None else [])
        if added and target is not None and target.email_verified_at is None:
            # The role would go to whoever made the account, maybe not the mailbox owner.
            raise FormValidationError(
                {"roles": "This address has not been proven yet: no new roles until it is."}
            )
        bad = [r for r in data.get("roles") or [] if not re.fullmatch(ROLE_PATTERN, str(r))]
        if bad:
            raise FormValidationError(
                {"roles": f"Not a role name: {bad[0]!r} (a-z, 0-9, '_' and '-')."}
            )
        # Shown, never taken from the form: only a proof of the mailbox (or the action)
        # sets it, and that clears what was attached before.
        data.pop("email_verified_at", None)
        if target is not None and _new_address(data.get("email"), target.email):
            # Nobody has proven the new address: its owner's first sign-in must clear the
            # account as for any unproven one.
            data["email_verified_at"] = None
        return await super().edit(request, pk, data)

    async def before_delete(self, request: Request, obj: Any) -> None:
        if obj.id == acting_admin(request).id:
            raise ActionFailed("You cannot delete your own account from the admin.")

    async def delete_object(self, request: Request, obj: Any) -> None:
        """The account page's cascade: sessions, the app's data, files, links, the user."""

        context = _context(request)
        try:
            await delete_account(
                obj,
                context.find(BlobStore),
                context.user_data_cleaners,
                remove_file=file_remover(context),
            )
        except BlobStorageError as exc:
            raise ActionFailed(f"The user's files could not be removed: {exc}") from exc

    async def is_row_action_allowed_for_obj(self, request: Request, name: str, obj: Any) -> bool:
        if name == "view_as":  # offered only where it can work
            return obj.is_active and not obj.is_admin and obj.id != acting_admin(request).id
        return bool(await super().is_row_action_allowed_for_obj(request, name, obj))

    async def _each(self, request: Request, selection: ActionSelection) -> list[UserModel]:
        users: list[UserModel] = list(await selection.rows())
        return users

    async def _set_flag(
        self, request: Request, selection: ActionSelection, name: str, changes: dict[str, Any]
    ) -> str:
        me = acting_admin(request)
        done = 0
        for user in await self._each(request, selection):
            if user.id == me.id and changes.get("is_active") is False:
                raise ActionFailed("You cannot deactivate yourself.")
            before = audit.snapshot(user)
            await user.set(changes)
            if name == "deactivate":
                await sign_out_everywhere(user)
            diff = audit.diff(before, audit.snapshot(user))
            if diff:
                await self.record(request, name, user, diff)
                done += 1
        return f"{done} user(s) changed."

    @action(
        name="deactivate",
        text="Deactivate",
        confirmation="Deactivate the selected users? Their sessions end at once.",
        submit_btn_text="Deactivate",
        submit_btn_class="action.modal_confirm_button_delete",
    )
    async def deactivate_action(self, request: Request, selection: ActionSelection) -> str:
        return await self._set_flag(request, selection, "deactivate", {"is_active": False})

    @action(name="activate", text="Activate", confirmation="Activate the selected users?")
    async def activate_action(self, request: Request, selection: ActionSelection) -> str:
        return await self._set_flag(request, selection, "activate", {"is_active": True})

    @action(
        name="mark_verified",
        text="Mark email verified",
        confirmation=(
            "Mark the selected users' addresses as verified? As at a first sign-in by email, "
            "their sessions end and their provider links, passkeys, API tokens, two-factor "
            "codes, name and picture are removed."
        ),
    )
    async def verify_action(self, request: Request, selection: ActionSelection) -> str:

        chosen = [u for u in await self._each(request, selection) if u.email_verified_at is None]
        for user in chosen:
            before = audit.snapshot(user)
            # The same proof as the owner's first email sign-in: whatever was attached
            # while the address was unproven may be someone else's way in.
            claimed = await claim_mailbox(user)
            after = audit.snapshot(claimed) if claimed is not None else before
            await self.record(request, "mark_verified", user, audit.diff(before, after))
        return f"{len(chosen)} address(es) marked verified."

    @action(
        name="sign_out_everywhere",
        text="Sign out everywhere",
        confirmation="End every session of the selected users?",
    )
    async def sign_out_action(self, request: Request, selection: ActionSelection) -> str:
        users = await self._each(request, selection)
        for user in users:
            await sign_out_everywhere(user)
            await self.record(request, "sign_out_everywhere", user)
        return f"{len(users)} user(s) signed out everywhere."

    @row_action(
        name="view_as",
        text="View as this user",
        confirmation="Open the app as this user? You come back with the banner's button.",
        icon_class="fa-solid fa-user-secret",
        submit_btn_text="View as user",
        custom_response=True,
    )
    async def view_as_action(self, request: Request, pk: Any) -> Response:

        target = await self.find_by_pk(request, pk)
        if target is None:
            raise ActionFailed("No such user.")
        back = request.url_for("admin:detail", key="users").include_query_params(pk=str(target.id))
        try:
            await start_viewing_as(
                request, acting_admin(request), target, return_to=_path_of(str(back))
            )
        except CannotViewAs as exc:
            # The browser posted a plain form (custom response): back to the page, with why.
            flash(request, str(exc), "error")
            return RedirectResponse(_path_of(str(back)), status_code=303)
        except SecondFactorRequired as exc:
            from vibetuner.auth.two_factor import second_factor_required_handler

            return await second_factor_required_handler(request, exc)
        return RedirectResponse("/", status_code=303)


def _new_address(value: Any, current: str) -> bool:
    """True when the form's ``email`` is a valid address other than ``current``."""

    try:
        return isinstance(value, str) and normalize_email(value) != current
    except ValueError:
        return False  # the form's own validation answers that


def _path_of(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


# --- sign-in records ---------------------------------------------------------------------


class ReadOnlyView(AuditedModelView):
    """A view that lists, shows and deletes, but neither creates nor edits."""

    def can_create(self, request: Request) -> bool:
        return False

    def can_edit(self, request: Request) -> bool:
        return False


class OAuthAccountView(ReadOnlyView):
    """Provider links: provider, account email and dates; tokens are never shown."""

    fields = [
        StringField("provider"),
        StringField("provider_user_id", label="Account id"),
        HasOne("user", key="users"),
        EmailField("email"),
        BooleanField("email_verified"),
        DateTimeField("expires_at", label="Token expires"),
        DateTimeField("db_insert_dt", label="Linked"),
    ]
    searchable_fields = ["provider", "email"]
    fields_default_sort = [("db_insert_dt", True)]

    def __init__(self) -> None:
        super().__init__(
            OAuthAccount, key="oauth-accounts", menu_label="Provider links", icon="fa-solid fa-link"
        )

    async def repr(self, obj: Any, request: Request) -> str:
        return f"{obj.provider} {obj.email or obj.provider_user_id}"


# request.state: user id -> email, for the sessions listed on this page.
SESSION_EMAILS = "vt_session_emails"


async def _emails_of(request: Request, user_ids: set[Any]) -> dict[Any, str]:
    """The email addresses of ``user_ids``, in one query, remembered for this request."""
    known: dict[Any, str] = getattr(request.state, SESSION_EMAILS, {})
    missing = [user_id for user_id in user_ids if user_id not in known]
    if missing:
        users = await UserModel.find({"_id": {"$in": missing}}).to_list()
        known = {**known, **{user.id: user.email for user in users}}
        setattr(request.state, SESSION_EMAILS, known)
    return known


@dataclass
class SessionUserField(ComputedField):
    """The session's user by email address (the id if the account is gone)."""

    async def parse_obj(self, request: Request, obj: Any) -> Any:
        emails = await _emails_of(request, {obj.user_id})
        return emails.get(obj.user_id, str(obj.user_id))


@dataclass
class BrowserField(ComputedField):
    """The session's browser as people name it ("Chrome on Linux")."""

    async def parse_obj(self, request: Request, obj: Any) -> Any:
        return browser_name(obj.user_agent)


class SessionView(ReadOnlyView):
    """Signed-in browsers; deleting one revokes it. Named by ``public_id``, never the hash."""

    fields = [
        StringField("public_id", label="Session"),
        SessionUserField("user", label="User"),
        BrowserField("browser", label="Browser"),
        DateTimeField("created_at", label="Signed in"),
        DateTimeField("last_seen_at", label="Last seen"),
        DateTimeField("expires_at", label="Expires"),
        StringField("user_agent", label="User agent"),
        StringField("ip_prefix", label="Network"),
        StringField("impersonator_id", label="Opened by admin"),
    ]
    exclude_fields_from_list = ["user_agent", "created_at", "expires_at", "impersonator_id"]
    # (User and browser are worked out per row: they cannot be sorted or searched on.)
    sortable_fields = ["public_id", "created_at", "last_seen_at", "expires_at", "ip_prefix"]
    searchable_fields = ["public_id", "user_agent", "ip_prefix"]
    fields_default_sort = [("last_seen_at", True)]

    async def find_all(self, request: Request, *args: Any, **kwargs: Any) -> list[Any]:
        found = await super().find_all(request, *args, **kwargs)
        await _emails_of(request, {session.user_id for session in found})  # one query a page
        return found

    def __init__(self) -> None:
        super().__init__(UserSession, key="sessions", menu_label="Sessions", icon="fa-solid fa-key")
        self.pk_attr = "public_id"

    async def find_by_pk(self, request: Request, pk: Any) -> Any:
        return await UserSession.find_one({"public_id": str(pk)})

    async def find_by_pks(self, request: Request, pks: Any) -> list[Any]:
        return await UserSession.find({"public_id": {"$in": [str(pk) for pk in pks]}}).to_list()

    async def get_pk_value(self, request: Request, obj: Any) -> Any:
        return obj.public_id

    async def repr(self, obj: Any, request: Request) -> str:
        return f"session {obj.public_id}"

    @action(
        name="delete",
        text="Revoke",
        confirmation="Revoke the selected sessions? Those browsers are signed out at once.",
        submit_btn_text="Revoke",
        submit_btn_class="action.modal_confirm_button_delete",
    )
    async def delete_action(self, request: Request, selection: ActionSelection) -> str:
        count = await self.delete(request, await selection.pks())
        return f"{count} session(s) revoked."

    async def delete_object(self, request: Request, obj: Any) -> None:
        await UserSession.get_pymongo_collection().delete_one({"public_id": obj.public_id})


class ApiTokenView(ReadOnlyView):
    """Personal API tokens: whose, scopes, last use; deleting one revokes it. Never the hash."""

    fields = [
        StringField("public_id", label="Token"),
        SessionUserField("user", label="User"),
        StringField("name"),
        ListField(StringField("scopes")),
        DateTimeField("created_at", label="Made"),
        DateTimeField("expires_at", label="Expires"),
        DateTimeField("last_used_at", label="Last used"),
        StringField("last_used_address", label="Last address"),
    ]
    exclude_fields_from_list = ["created_at"]
    sortable_fields = ["public_id", "name", "created_at", "expires_at", "last_used_at"]
    searchable_fields = ["public_id", "name", "last_used_address"]
    fields_default_sort = [("created_at", True)]

    def __init__(self) -> None:
        super().__init__(
            ApiToken, key="api-tokens", menu_label="API tokens", icon="fa-solid fa-code"
        )
        self.pk_attr = "public_id"

    async def find_all(self, request: Request, *args: Any, **kwargs: Any) -> list[Any]:
        found = await super().find_all(request, *args, **kwargs)
        await _emails_of(request, {token.user_id for token in found})  # one query a page
        return found

    async def find_by_pk(self, request: Request, pk: Any) -> Any:
        return await ApiToken.find_one({"public_id": str(pk)})

    async def find_by_pks(self, request: Request, pks: Any) -> list[Any]:
        return await ApiToken.find({"public_id": {"$in": [str(pk) for pk in pks]}}).to_list()

    async def get_pk_value(self, request: Request, obj: Any) -> Any:
        return obj.public_id

    async def repr(self, obj: Any, request: Request) -> str:
        return f"API token {obj.name} ({obj.public_id})"

    async def record(
        self,
        request: Request,
        action_name: str,
        obj: Any,
        changes: dict[str, Any] | None = None,
    ) -> AuditLog:
        # The document's id is the token's hash: never shown, in the audit log neither.
        kept = {name: value for name, value in (changes or {}).items() if name != "id"}
        return await super().record(request, action_name, obj, kept or None)

    @action(
        name="delete",
        text="Revoke",
        confirmation="Revoke the selected tokens? Whatever uses them stops working at once.",
        submit_btn_text="Revoke",
        submit_btn_class="action.modal_confirm_button_delete",
    )
    async def delete_action(self, request: Request, selection: ActionSelection) -> str:
        count = await self.delete(request, await selection.pks())
        return f"{count} token(s) revoked."

    async def delete_object(self, request: Request, obj: Any) -> None:
        await ApiToken.get_pymongo_collection().delete_one({"public_id": obj.public_id})


class EmailTokenView(ReadOnlyView):
    """Sign-in links sent by email: purpose, expiry and use; never the hash."""

    fields = [
        EmailField("email"),
        StringField("purpose"),
        DateTimeField("expires_at", label="Expires"),
        DateTimeField("used_at", label="Used"),
        DateTimeField("db_insert_dt", label="Sent"),
    ]
    searchable_fields = ["email", "purpose"]
    fields_default_sort = [("db_insert_dt", True)]

    def __init__(self) -> None:
        super().__init__(
            EmailVerificationToken,
            key="email-tokens",
            menu_label="Email links",
            icon="fa-solid fa-envelope",
        )

    async def repr(self, obj: Any, request: Request) -> str:
        return f"{obj.purpose} link for {obj.email}"


# --- files -------------------------------------------------------------------------------


@dataclass
class BlobFileField(ComputedField):
    """A link to the file's bytes and, for images, a preview."""

    list_template: str = "vibetuner_admin/blob_file.html"
    detail_template: str = "vibetuner_admin/blob_file_detail.html"
    exclude_from_edit: bool = True

    async def parse_obj(self, request: Request, obj: Any) -> Any:

        url = str(request.url_for("admin:vt-blob-content", blob_id=str(obj.id)))
        context = _context(request)
        image, reason = await preview(
            context.find(BlobStore), obj, context.settings.image_max_pixels
        )
        return {
            "url": _path_of(url),
            "image": image,
            "no_preview": reason,
            "filename": obj.filename or str(obj.id),
        }

    async def serialize_value(self, request: Request, value: Any) -> Any:
        return value  # the template reads the parts; StringField would make it one string


class BlobView(ReadOnlyView):
    """Stored files: owner, size, type, status; preview, download; delete removes the object."""

    fields = [
        BlobFileField("file", label="File"),
        StringField("filename"),
        HasOne("uploaded_by", key="users", label="Owner"),
        IntegerField("size", label="Size (bytes)"),
        StringField("content_type", label="Type"),
        StringField("status"),
        StringField("namespace"),
        StringField("backend"),
        DateTimeField("db_insert_dt", label="Uploaded"),
    ]
    searchable_fields = ["filename", "content_type", "namespace"]
    fields_default_sort = [("db_insert_dt", True)]
    exclude_fields_from_export = ["file"]
    exclude_fields_from_list = ["backend", "namespace", "status"]

    def __init__(self) -> None:
        super().__init__(Blob, key="blobs", menu_label="Files", icon="fa-solid fa-file")

    async def repr(self, obj: Any, request: Request) -> str:
        return str(obj.filename or obj.id)

    async def delete_object(self, request: Request, obj: Any) -> None:
        """The stored object goes first; when storage refuses, the record stays."""
        store = _context(request).find(BlobStore)
        if store is None:
            raise ActionFailed("Blob storage is not running in this app.")
        try:
            await store.delete(obj)
        except BlobStorageError as exc:
            raise ActionFailed(f"The file could not be removed from storage: {exc}") from exc


# --- jobs and the audit trail ------------------------------------------------------------


class FailedJobView(ReadOnlyView):
    """Jobs that failed every attempt: the error, retry, purge (delete)."""

    fields = [
        StringField("task"),
        IntegerField("attempts"),
        TextAreaField("error"),
        DateTimeField("failed_at", label="Failed"),
        DateTimeField("retried_at", label="Retried"),
        JSONField("args"),
        JSONField("kwargs"),
    ]
    exclude_fields_from_list = ["args", "kwargs"]
    searchable_fields = ["task", "error"]
    fields_default_sort = [("failed_at", True)]

    def __init__(self) -> None:
        super().__init__(
            FailedJob, key="failed-jobs", menu_label="Failed jobs", icon="fa-solid fa-bug"
        )

    async def repr(self, obj: Any, request: Request) -> str:
        return f"{obj.task} ({obj.id})"

    @action(
        name="retry",
        text="Retry",
        confirmation="Queue the selected jobs again with their arguments?",
        submit_btn_text="Retry",
    )
    async def retry_action(self, request: Request, selection: ActionSelection) -> str:
        from vibetuner.jobs.feature import JobsFeature

        feature = _context(request).find_feature(JobsFeature)
        if feature is None:
            raise ActionFailed("Background jobs are not enabled in this app.")
        retried = 0
        for failed in await selection.rows():
            if await requeue_failed(feature, failed):
                await self.record(request, "retry", failed)
                retried += 1
        return f"{retried} job(s) queued again."


@dataclass
class ChangesField(JSONField):
    """An audit entry's changes: field names in lists, a before/after table in details."""

    list_template: str = "vibetuner_admin/changes_list.html"
    detail_template: str = "vibetuner_admin/changes.html"

    async def serialize_value(self, request: Request, value: Any) -> Any:
        return value


class AuditLogView(ReadOnlyView):
    """The audit trail: read-only, newest first, kept after users are deleted."""

    fields = [
        DateTimeField("at", label="When"),
        EmailField("actor_email", label="Who"),
        StringField("action"),
        StringField("target_type", label="What"),
        StringField("target_label", label="Record"),
        StringField("target_id", label="Record id"),
        ChangesField("changes"),
        StringField("method", label="Request method"),
        StringField("path", label="Request path"),
        StringField("ip_prefix", label="Network"),
        StringField("request_id", label="Request id"),
    ]
    exclude_fields_from_list = ["target_id", "ip_prefix", "method", "path", "request_id"]
    searchable_fields = [
        "actor_email",
        "action",
        "target_type",
        "target_label",
        "target_id",
        "path",
        "request_id",
    ]
    sortable_fields = ["at", "actor_email", "action", "target_type", "target_label"]
    fields_default_sort = [("at", True)]

    def __init__(self) -> None:
        super().__init__(
            AuditLog, key="audit-log", menu_label="Audit log", icon="fa-solid fa-scroll"
        )

    def can_delete(self, request: Request) -> bool:
        return False  # the trail is kept, even by admins

    async def repr(self, obj: Any, request: Request) -> str:
        return f"{obj.action} {obj.target_type} {obj.target_label}"


def framework_views(jobs: bool) -> Sequence[AuditedModelView]:
    """vibetuner's own views, in menu order (failed jobs when jobs are enabled)."""
    views: list[AuditedModelView] = [
        UserView(),
        OAuthAccountView(),
        SessionView(),
        ApiTokenView(),
        EmailTokenView(),
        BlobView(),
    ]
    if jobs:
        views.append(FailedJobView())
    views.append(AuditLogView())
    return views
