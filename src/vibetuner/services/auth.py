"""Sign-in rules: magic links by email and accounts from OAuth / OpenID Connect providers.

Nothing here knows about HTTP; the sign-in routes in ``vibetuner.web`` turn the
errors raised here into pages.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import quote

from beanie import PydanticObjectId
from pydantic import SecretStr

from vibetuner.config import Settings
from vibetuner.errors import (
    AccountDisabled,
    DuplicateEmail,
    DuplicateOAuthAccount,
    EmailDeliveryError,
    InvalidEmail,
    MagicLinkRefused,
    OAuthSignInRefused,
)
from vibetuner.models.email_verification import EmailVerificationToken
from vibetuner.models.mixins import utcnow
from vibetuner.models.oauth import OAuthAccount
from vibetuner.models.user import UserModel, normalize_email
from vibetuner.services import rate_limit
from vibetuner.services.crypto import TokenCipher
from vibetuner.services.email import Mailer
from vibetuner.services.links import LinkBuilder
from vibetuner.services.sessions import end_all_sessions

logger = logging.getLogger("vibetuner.auth")

MAGIC_LINK_PURPOSE = "login"
MAGIC_LINK_ROUTE = "magic_link"


@dataclass(frozen=True)
class OAuthIdentity:
    """Who the provider says the person is."""

    provider: str
    provider_user_id: str
    email: str | None = None
    email_verified: bool = False
    name: str | None = None
    picture: str | None = None


@dataclass(frozen=True)
class OAuthOutcome:
    """The user signed in and which callback rule applied."""

    user: UserModel
    action: Literal["signed_in", "linked", "created"]


@dataclass
class AuthService:
    """The sign-in rules of one app: its settings, mailer, links and optional token cipher."""

    settings: Settings
    mailer: Mailer
    links: LinkBuilder
    cipher: TokenCipher | None = None

    # --- magic links -------------------------------------------------------------------

    def magic_link_url(self, token: str, next_path: str | None = None) -> str:
        """The absolute link for ``token`` (on ``BASE_URL``), carrying ``next`` when given."""
        url = self.links.url(MAGIC_LINK_ROUTE, token=token)
        if next_path and next_path != self.settings.login_redirect:
            url += f"?next={quote(next_path, safe='/')}"
        return url

    async def send_magic_link(
        self, email: str, *, next_path: str | None = None, client_ip: str | None = None
    ) -> str:
        """Issue a sign-in link for ``email`` and send it; returns the normalized address.

        Raises :class:`InvalidEmail` (nothing stored), ``RateLimitExceeded`` (per client
        address, then per email) or :class:`EmailDeliveryError` (the token is deleted).
        The answer never depends on whether an account exists.
        """
        try:
            address = normalize_email(email)
        except ValueError as exc:
            raise InvalidEmail(str(exc)) from None
        settings = self.settings
        window = settings.magic_link_rate_window_seconds
        if client_ip:
            await rate_limit.enforce(
                "magic-link-ip",
                client_ip,
                limit=settings.magic_link_rate_per_ip,
                window_seconds=window,
            )
        await rate_limit.enforce(
            "magic-link-email",
            rate_limit.mailbox_key(address),
            limit=settings.magic_link_rate_per_email,
            window_seconds=window,
        )
        ttl = timedelta(seconds=settings.magic_link_ttl_seconds)
        token, record = await EmailVerificationToken.issue(
            address, purpose=MAGIC_LINK_PURPOSE, ttl=ttl
        )
        context = {
            "app_name": settings.app_name,
            "link": self.magic_link_url(token, next_path),
            "email": address,
            "ttl_minutes": max(1, settings.magic_link_ttl_seconds // 60),
        }
        # In the recipient's language: theirs when they have an account and chose one,
        # else the language of the page that asked.
        from vibetuner.i18n import current_locale

        known = await UserModel.get_pymongo_collection().find_one(
            {"email": address}, {"locale": 1, "_id": 0}
        )
        locale = (known or {}).get("locale") or current_locale()
        try:
            await self.mailer.send_template(
                "magic_link", to=address, context=context, locale=locale
            )
        except EmailDeliveryError as exc:
            await record.delete()
            logger.error("sign-in email to %s not sent, link withdrawn: %s", _mask(address), exc)
            raise
        logger.info("sign-in link sent to %s", _mask(address))
        return address

    async def magic_link_email(self, token: str) -> str:
        """The address a usable link signs in, without using it; raises ``MagicLinkRefused``.

        The confirmation page shows it, so a link someone else mailed shows whose account
        it would sign into.
        """
        record = await EmailVerificationToken.peek(token, purpose=MAGIC_LINK_PURPOSE)
        if record is None:
            raise MagicLinkRefused(
                await EmailVerificationToken.status(token, purpose=MAGIC_LINK_PURPOSE)
            )
        return record.email

    async def sign_in_with_magic_link(self, token: str) -> UserModel:
        """Consume ``token`` and return its user, created on first sign-in.

        The email counts as verified: following the link proved the mailbox. Raises
        :class:`MagicLinkRefused` or :class:`AccountDisabled`.
        """
        record = await EmailVerificationToken.consume(token, purpose=MAGIC_LINK_PURPOSE)
        if record is None:
            raise MagicLinkRefused(
                await EmailVerificationToken.status(token, purpose=MAGIC_LINK_PURPOSE)
            )
        user = await UserModel.get_by_email(record.email)
        now = utcnow()
        if user is None:
            user = UserModel(email=record.email, email_verified_at=now)
            try:
                await user.insert()
            except DuplicateEmail:
                user = await UserModel.get_by_email(record.email)
                if user is None:  # deleted in between; nothing sensible to sign in
                    raise MagicLinkRefused("unknown") from None
        elif user.email_verified_at is None:
            claimed = await claim_mailbox(user)
            if claimed is None:  # deleted in between
                raise MagicLinkRefused("unknown")
            user = claimed
        if not user.is_active:
            raise AccountDisabled("this account is disabled")
        return user

    # --- OAuth -------------------------------------------------------------------------

    async def oauth_sign_in(
        self, identity: OAuthIdentity, token: dict[str, Any], current: UserModel | None
    ) -> OAuthOutcome:
        """Apply the callback rules, in order, and return the user to sign in.

        1. this provider account is known: its user, with the stored tokens refreshed;
        2. someone is signed in: the account is linked to them;
        3. a user has the same email: linked only when the provider says it is verified;
        4. otherwise a new user with this account.
        """
        account = await OAuthAccount.find_one(
            {"provider": identity.provider, "provider_user_id": identity.provider_user_id}
        )
        if account is not None:
            user = await UserModel.get(_link_id(account.user))
            if user is None:
                # The user was deleted; the orphaned account may be claimed again.
                await account.delete()
            else:
                await self._refresh_account(account, identity, token)
                return OAuthOutcome(_active(user), "signed_in")

        if current is not None:
            await self._link(current, identity, token)
            return OAuthOutcome(_active(current), "linked")

        if not identity.email:
            raise OAuthSignInRefused(
                "no_email",
                f"{identity.provider} did not share an email address with this site. Allow access "
                "to your email address there, or sign in with an email link.",
            )
        try:
            email = normalize_email(identity.email)
        except ValueError:
            raise OAuthSignInRefused(
                "bad_email", f"{identity.provider} sent an email address that is not valid."
            ) from None

        existing = await UserModel.get_by_email(email)
        if existing is not None:
            if not identity.email_verified:
                # The address is not named: this page must not tell who has an account.
                raise OAuthSignInRefused(
                    "unverified_email",
                    f"An account with this email address already exists, and "
                    f"{identity.provider} does not confirm that the address is verified. Sign in "
                    f"with an email link first, then link your {identity.provider} account "
                    "from there.",
                )
            if existing.email_verified_at is None:
                # The provider proves the mailbox for the first time: the same clean-up as
                # an email link, then the profile comes from this verified identity.
                claimed = await claim_mailbox(existing)
                if claimed is None:  # deleted in between: start over
                    return await self.oauth_sign_in(identity, token, current)
                existing = claimed
                profile = {"name": identity.name, "picture": identity.picture}
                await existing.set({k: v for k, v in profile.items() if v is not None})
            await self._link(existing, identity, token)
            return OAuthOutcome(_active(existing), "linked")

        user = UserModel(
            email=email,
            name=identity.name,
            picture=identity.picture,
            email_verified_at=utcnow() if identity.email_verified else None,
        )
        try:
            await user.insert()
        except DuplicateEmail:
            # Created at the same moment by another request: apply rule 3 to it.
            return await self.oauth_sign_in(identity, token, current)
        await self._link(user, identity, token)
        return OAuthOutcome(user, "created")

    async def _link(self, user: UserModel, identity: OAuthIdentity, token: dict[str, Any]) -> None:
        account = OAuthAccount(
            provider=identity.provider,
            provider_user_id=identity.provider_user_id,
            user=user,
            email=identity.email,
            email_verified=identity.email_verified,
            **self._token_fields(token),
        )
        try:
            # The account's ``user`` link is the only record of the relation: one atomic
            # insert, nothing on the user document to keep in step.
            await account.insert()
        except DuplicateOAuthAccount:
            raise OAuthSignInRefused(
                "already_linked",
                f"This {identity.provider} account is already linked to another user.",
            ) from None

    async def _refresh_account(
        self, account: OAuthAccount, identity: OAuthIdentity, token: dict[str, Any]
    ) -> None:
        fields = self._token_fields(token)
        if fields.get("refresh_token") is None:
            # Providers send a refresh token only sometimes; keep the one we have.
            fields.pop("refresh_token", None)
        for name, value in fields.items():
            setattr(account, name, value)
        account.email = identity.email
        account.email_verified = identity.email_verified
        await account.save()

    def _token_fields(self, token: dict[str, Any]) -> dict[str, Any]:
        expires_at = token.get("expires_at")
        return {
            "access_token": self._seal(token.get("access_token")),
            "refresh_token": self._seal(token.get("refresh_token")),
            "expires_at": datetime.fromtimestamp(expires_at, UTC) if expires_at else None,
            "scope": token.get("scope") if isinstance(token.get("scope"), str) else None,
        }

    def _seal(self, value: Any) -> SecretStr | None:
        if not value or not isinstance(value, str):
            return None
        return SecretStr(self.cipher.encrypt(value) if self.cipher else value)

    def reveal(self, value: SecretStr | None) -> str | None:
        """The clear text of a stored provider token (for app code calling the provider's API)."""
        if value is None:
            return None
        raw = value.get_secret_value()
        return self.cipher.decrypt(raw) if self.cipher else raw


async def linked_providers(user: UserModel) -> list[str]:
    """Names of the providers linked to ``user``, sorted."""
    # Only the names, straight from the collection: this runs on every ``/auth/me``.
    found = OAuthAccount.get_pymongo_collection().find(
        {"user.$id": user.id}, {"provider": 1, "_id": 0}
    )
    return sorted({account["provider"] async for account in found})


async def claim_mailbox(user: UserModel) -> UserModel | None:
    """The first proof of ``user``'s mailbox, by any route; returns the user as stored now.

    Until now nobody had proven the address: the account may have been created through a
    provider that does not verify emails, by someone who is not the mailbox owner. So
    the links made on the unverified address go, every earlier session ends
    (``session_version``), and the profile that route set (name, picture) is cleared.
    None when the user was deleted in between.
    """
    await _drop_unverified_links(user)
    await user.update(
        {
            "$set": {"email_verified_at": utcnow(), "name": None, "picture": None},
            "$inc": {"session_version": 1},
        }
    )
    await end_all_sessions(user.id)  # type: ignore[arg-type]
    return await UserModel.get(user.id)


async def _drop_unverified_links(user: UserModel) -> None:
    # Someone may have created this account through a provider that did not verify the
    # address, before the mailbox owner ever signed in. Now that the owner proves the
    # mailbox, those links go, so the earlier party cannot keep a way in.
    unverified = await OAuthAccount.find({"user.$id": user.id, "email_verified": False}).to_list()
    if not unverified:
        return
    dropped = {account.id for account in unverified}
    await OAuthAccount.find({"_id": {"$in": list(dropped)}}).delete()
    logger.info("removed %d unverified provider link(s) from user %s", len(dropped), user.id)


def _link_id(link: Any) -> PydanticObjectId:
    # A Link that was not fetched carries a DBRef; a fetched one is the document itself.
    ref = getattr(link, "ref", None)
    found: PydanticObjectId = ref.id if ref is not None else link.id
    return found


def _active(user: UserModel) -> UserModel:
    if not user.is_active:
        raise AccountDisabled("this account is disabled")
    return user


def _mask(email: str) -> str:
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"
