"""Sign-in rules: magic links by email and accounts from OAuth / OpenID Connect providers.

Nothing here knows about HTTP; the sign-in routes in ``vibetuner.web`` turn the
errors raised here into pages.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import quote, urlsplit

from beanie import PydanticObjectId
from pydantic import SecretStr

from vibetuner.auth import api_token_store, rate_limit, two_factor_codes
from vibetuner.auth.crypto import TokenCipher
from vibetuner.auth.sessions import end_all_sessions
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
from vibetuner.i18n import N_, current_locale
from vibetuner.models.email_verification import EmailVerificationToken
from vibetuner.models.mixins import utcnow
from vibetuner.models.oauth import OAuthAccount
from vibetuner.models.user import UserModel, normalize_email
from vibetuner.ratelimit.limiter import Limiter
from vibetuner.rates import Rate
from vibetuner.services.email import Mailer
from vibetuner.services.links import LinkBuilder

logger = logging.getLogger("vibetuner.auth")

MAGIC_LINK_PURPOSE = "login"
MAGIC_LINK_ROUTE = "magic_link"
PICTURE_URL_MAX = 2048

# Why a provider sign-in is refused; pages translate them, then fill in %(provider)s.
NO_EMAIL = N_(
    "%(provider)s did not share an email address with this site. Allow access to your "
    "email address there, or sign in with an email link."
)
BAD_EMAIL = N_("%(provider)s sent an email address that is not valid.")
UNVERIFIED_EMAIL = N_(
    "%(provider)s does not confirm that this email address is yours. Sign in with an email "
    "link first; then you can link your %(provider)s account from your account page."
)
ALREADY_LINKED = N_("This %(provider)s account is already linked to another user.")
SIGN_IN_NEEDS_CONFIRMATION = N_(
    "The email address of this account is not confirmed yet, so %(provider)s cannot sign "
    "in to it. Sign in with an email link sent to that address first."
)
LINK_NEEDS_CONFIRMATION = N_(
    "Confirm your email address before you link %(provider)s: sign in with an email link "
    "sent to it, then link %(provider)s again."
)
LINKED_BEFORE_CONFIRMATION = N_(
    "This %(provider)s account was linked before the account's email address was confirmed, "
    "so it no longer signs in. Sign in with an email link, then link %(provider)s again from "
    "your account page."
)


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
    #: The app's limiter, asked at each use (its backend opens at startup).
    limiter: Callable[[], Limiter] = field(default=lambda: _database_limiter())

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
        limiter = self.limiter()
        if client_ip:
            await limiter.enforce(
                "magic-link-ip",
                f"address:{client_ip}",
                [Rate(settings.magic_link_rate_per_ip, window)],
            )
        await limiter.enforce(
            "magic-link-email",
            f"email:{rate_limit.mailbox_key(address)}",
            [Rate(settings.magic_link_rate_per_email, window)],
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
           refused while that user's address is unproven, and for a link made before it
           was proven (which the proof should have removed: it is removed now);
        2. someone is signed in: the account is linked to them, once their address is proven;
        3. the provider does not confirm the address: refused, with the same answer whether
           or not an account has it, and nothing is created;
        4. a user has the address: the account is linked to them (the first proof of their
           mailbox clears the account first, as an email link does);
        5. otherwise a new user with this account.
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
                await _check_sign_in_link(user, account)
                if not await self._refresh_account(account, identity, token):
                    # Unlinked since it was found: the identity is unknown now.
                    return await self.oauth_sign_in(identity, token, current)
                return OAuthOutcome(_active(user), "signed_in")

        if current is not None:
            if current.email_verified_at is None:
                # Whoever is signed in has not proven the address: anything attached now
                # could outlive the mailbox owner's first sign-in.
                raise OAuthSignInRefused(
                    "email_not_confirmed", LINK_NEEDS_CONFIRMATION, provider=identity.provider
                )
            await self._link(current, identity, token)
            return OAuthOutcome(_active(current), "linked")

        if not identity.email:
            raise OAuthSignInRefused("no_email", NO_EMAIL, provider=identity.provider)
        try:
            email = normalize_email(identity.email)
        except ValueError:
            raise OAuthSignInRefused("bad_email", BAD_EMAIL, provider=identity.provider) from None
        if not identity.email_verified:
            # Decided before any lookup: the answer must not tell whether an account has
            # this address, and an address nobody proved must not start an account that
            # things could be attached to before its owner shows up.
            raise OAuthSignInRefused(
                "unverified_email", UNVERIFIED_EMAIL, provider=identity.provider
            )

        profile = provider_profile(identity)
        existing = await UserModel.get_by_email(email)
        if existing is not None:
            if existing.email_verified_at is None:
                # The provider proves the mailbox for the first time: the same clean-up as
                # an email link, then the profile comes from this verified identity.
                claimed = await claim_mailbox(existing)
                if claimed is None:  # deleted in between: start over
                    return await self.oauth_sign_in(identity, token, current)
                existing = claimed
                await existing.set({k: v for k, v in profile.items() if v is not None})
            await self._link(existing, identity, token)
            return OAuthOutcome(_active(existing), "linked")

        user = UserModel(
            email=email,
            name=profile["name"],
            picture=profile["picture"],
            email_verified_at=utcnow(),
        )
        try:
            await user.insert()
        except DuplicateEmail:
            # Created at the same moment by another request: apply rule 4 to it.
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
                "already_linked", ALREADY_LINKED, provider=identity.provider
            ) from None

    async def _refresh_account(
        self, account: OAuthAccount, identity: OAuthIdentity, token: dict[str, Any]
    ) -> bool:
        """Store the new tokens and address on ``account``; False when it no longer exists."""
        fields = self._token_fields(token)
        if fields.get("refresh_token") is None:
            # Providers send a refresh token only sometimes; keep the one we have.
            fields.pop("refresh_token", None)
        fields.update(
            email=identity.email, email_verified=identity.email_verified, db_update_dt=utcnow()
        )
        stored = {
            name: value.get_secret_value() if isinstance(value, SecretStr) else value
            for name, value in fields.items()
        }
        # An update that matches the link by id, never save(): that would write back a
        # link removed meanwhile (unlinked by its user, or dropped by a proof of the mailbox).
        result = await OAuthAccount.get_pymongo_collection().update_one(
            {"_id": account.id}, {"$set": stored}
        )
        return bool(result.matched_count)

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

    Until now nobody had proven the address: whoever created the account, or signed in
    to it, may not be the mailbox owner. So nothing attached before the proof survives
    it: every provider link, passkey, API token and two-factor secret (with its recovery
    codes) goes, every earlier session ends (``session_version``), and the profile (name,
    picture, language) is cleared. None when the user was deleted in between.
    """
    # Links go before the address counts as proven: a provider sign-in that finds one of
    # them and then loads the user sees either an unproven user or a link made earlier
    # than the proof, and is refused either way.
    dropped = await OAuthAccount.find({"user.$id": user.id}).delete()
    count = dropped.deleted_count if dropped is not None else 0
    if count:
        logger.info(
            "removed %d provider link(s) made before user %s proved the address", count, user.id
        )
    from vibetuner.auth.passkey_store import remove_all

    if await remove_all(user.id):  # type: ignore[arg-type]
        logger.info("removed the passkeys added before user %s proved the address", user.id)
    # A token or a second factor of the former holder would be a way in, or a lock-out.
    await api_token_store.remove_all(user)
    await two_factor_codes.remove(user)
    await user.update(
        {
            "$set": {"email_verified_at": utcnow(), "name": None, "picture": None, "locale": None},
            "$inc": {"session_version": 1},
        }
    )
    await end_all_sessions(user.id)  # type: ignore[arg-type]
    return await UserModel.get(user.id)


def provider_profile(identity: OAuthIdentity) -> dict[str, str | None]:
    """The name and picture from a provider, in the form they may be stored.

    The name loses runs of white space and is cut to 200 characters. The picture is kept
    only as an absolute ``http(s)`` address of at most 2048 characters: a path on this
    site would read as one of the user's own files.
    """
    name = " ".join(identity.name.split())[:200] if isinstance(identity.name, str) else ""
    picture = identity.picture if isinstance(identity.picture, str) else ""
    try:
        parts = urlsplit(picture)
    except ValueError:
        parts = urlsplit("")
    web_address = (
        parts.scheme in ("http", "https")
        and bool(parts.hostname)
        and len(picture) <= PICTURE_URL_MAX
        and picture.isprintable()
        and " " not in picture
    )
    return {"name": name or None, "picture": picture if web_address else None}


async def _check_sign_in_link(user: UserModel, account: OAuthAccount) -> None:
    """Refuse a provider sign-in into an unproven account or through a pre-proof link."""
    proven_at = user.email_verified_at
    if proven_at is None:
        raise OAuthSignInRefused(
            "email_not_confirmed", SIGN_IN_NEEDS_CONFIRMATION, provider=account.provider
        )
    linked_at = account.db_insert_dt
    if linked_at is None and account.id is not None:
        # Stored without a time stamp: the id's own time, in whole seconds, rounded up.
        linked_at = account.id.generation_time + timedelta(seconds=1)
    if linked_at is None or _aware(linked_at) < _aware(proven_at):
        # Attached while anyone could have been signed in to the account (kept by an
        # earlier release, or found just before a proof removed it): never a way in.
        await account.delete()
        logger.info(
            "removed a %s link made before user %s proved the address", account.provider, user.id
        )
        raise OAuthSignInRefused(
            "linked_before_confirmation", LINKED_BEFORE_CONFIRMATION, provider=account.provider
        )


def _aware(moment: datetime) -> datetime:
    # The in-memory database hands datetimes back without a zone; they are UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


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


def _database_limiter() -> Limiter:
    """Counters in the app's MongoDB database: the limiter of a service built by hand."""
    from vibetuner.ratelimit.counters import MongoCounter

    return Limiter(MongoCounter(), "mongodb")
