"""Passkeys: the WebAuthn ceremonies (with Duo Labs' ``webauthn``) and their storage.

The relying party is the site of ``BASE_URL``: its host is the RP id and its origin the
only origin accepted. Every ceremony starts with a challenge stored on the server,
bound to the browser session that asked for it (the SHA-256 of a random value in its
session cookie), usable once and expiring after ``PASSKEY_CHALLENGE_TTL_SECONDS``.

Nothing can be attached to an account whose address is not proven: adding a passkey is
refused there, a passkey never signs in to such an account, and one created before the
proof is removed by it (``claim_mailbox``) or, failing that, when it is next used.

Nothing here knows about HTTP; ``vibetuner.auth.passkeys`` turns :class:`PasskeyRefused`
into answers.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import secrets
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from beanie import PydanticObjectId
from pymongo.errors import DuplicateKeyError

from vibetuner.auth.accounts import require_confirmed
from vibetuner.config import Settings
from vibetuner.errors import AccountDisabled, PasskeyRefused
from vibetuner.i18n import N_
from vibetuner.models.mixins import utcnow
from vibetuner.models.passkey import NAME_MAX, Passkey, PasskeyChallenge
from vibetuner.models.user import UserModel

logger = logging.getLogger("vibetuner.auth")

#: Passkeys one account may hold.
MAX_PASSKEYS = 20
DEFAULT_PORTS = {"http": 80, "https": 443}
TRANSPORTS = frozenset({"ble", "cable", "hybrid", "internal", "nfc", "smart-card", "usb"})

TRY_AGAIN = N_(
    "This passkey request is no longer valid (it was used already, or started in another "
    "window). Try again."
)
EXPIRED = N_("This passkey request took too long and expired. Try again.")
UNKNOWN = N_("This passkey is not registered here; it may have been removed. Sign in another way.")
NOT_VERIFIED = N_("The passkey's answer could not be verified. Try again.")
COUNTER = N_(
    "The passkey's answer was refused: it was used before, or the passkey was copied. "
    "Try again; if this keeps happening, remove the passkey and add it again."
)
UNCONFIRMED = N_(
    "The email address of this account is not confirmed yet, so a passkey cannot sign in "
    "to it. Sign in with an email link sent to that address first."
)
ALREADY = N_("This passkey is already registered.")
TOO_MANY = N_("An account can have at most %(count)s passkeys. Remove one first.")
MALFORMED = N_("The browser's passkey answer is malformed.")


@dataclass(frozen=True)
class RelyingParty:
    """The site passkeys belong to: RP id (a host name), the accepted origin, a display name."""

    id: str
    origin: str
    name: str


def relying_party(settings: Settings) -> RelyingParty:
    """The relying party of ``BASE_URL``."""
    parts = urlsplit(settings.base_url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    # As browsers write an origin: no default port, no user name.
    port = parts.port if parts.port not in (None, DEFAULT_PORTS.get(scheme)) else None
    origin = f"{scheme}://{host}" + (f":{port}" if port else "")
    return RelyingParty(id=host, origin=origin, name=settings.app_name)


def available(settings: Settings) -> bool:
    """True when passkeys are on (``PASSKEYS``) and ``BASE_URL`` names a host, not an IP address.

    Browsers refuse an IP address as relying-party id.
    """
    if not settings.passkeys:
        return False
    host = relying_party(settings).id
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return bool(host)
    return False


def user_handle(user_id: PydanticObjectId) -> bytes:
    """The WebAuthn user handle of a user: the 12 bytes of their id (no address, no name)."""
    return user_id.binary


def _digest(value: bytes | str) -> str:
    data = value.encode("utf-8") if isinstance(value, str) else value
    return hashlib.sha256(data).hexdigest()


def _aware(moment: datetime) -> datetime:
    # The in-memory database hands datetimes back without a zone; they are UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# --- challenges --------------------------------------------------------------------------


def new_challenge(settings: Settings) -> tuple[bytes, datetime]:
    """A fresh challenge and its expiry: the expiry (8 bytes, Unix seconds) then 32 random bytes.

    The expiry written in it tells an expired challenge whose record is already gone
    (MongoDB's TTL monitor) from one that never existed, as magic links do.
    """
    expires_at = utcnow() + timedelta(seconds=settings.passkey_challenge_ttl_seconds)
    return struct.pack(">Q", int(expires_at.timestamp())) + secrets.token_bytes(32), expires_at


async def _issue(
    challenge: bytes, expires_at: datetime, purpose: str, binding: str, user_id: Any = None
) -> None:
    await PasskeyChallenge(
        id=_digest(challenge),
        purpose=purpose,
        binding=_digest(binding),
        user_id=user_id,
        expires_at=expires_at,
    ).insert()


async def _consume(
    challenge: bytes, purpose: str, binding: str, user_id: PydanticObjectId | None = None
) -> None:
    """Use the challenge once: deleted as it is found, so a second use finds nothing."""
    query: dict[str, Any] = {
        "_id": _digest(challenge),
        "purpose": purpose,
        "binding": _digest(binding),
    }
    if user_id is not None:
        query["user_id"] = user_id
    found = await PasskeyChallenge.get_pymongo_collection().find_one_and_delete(query)
    now = utcnow()
    if found is None:
        # Gone: used, never issued to this session, or expired and removed already.
        written = struct.unpack(">Q", challenge[:8])[0] if len(challenge) == 40 else None
        if written is not None and written <= now.timestamp():
            raise PasskeyRefused("challenge_expired", EXPIRED)
        raise PasskeyRefused("challenge_unknown", TRY_AGAIN)
    if _aware(found["expires_at"]) <= now:
        raise PasskeyRefused("challenge_expired", EXPIRED)


def _client_challenge(client_data_json: bytes) -> bytes:
    from webauthn.helpers import parse_client_data_json

    try:
        return parse_client_data_json(client_data_json).challenge
    except Exception:  # any malformed client data: the browser's answer is unusable
        raise PasskeyRefused("bad_request", MALFORMED) from None


# --- adding a passkey --------------------------------------------------------------------


async def list_passkeys(user_id: PydanticObjectId) -> list[Passkey]:
    """The user's passkeys, most recently added first."""
    return await Passkey.find({"user_id": user_id}).sort("-created_at").to_list()


async def registration_options(settings: Settings, user: UserModel, binding: str) -> str:
    """The options of ``navigator.credentials.create()`` for a new passkey of ``user``, as JSON.

    Raises ``EmailNotConfirmed`` while the address is unproven and :class:`PasskeyRefused`
    (``too_many``) at ``MAX_PASSKEYS``. The passkey is discoverable (a resident key), so
    it signs in without an address typed.
    """
    from webauthn import generate_registration_options, options_to_json
    from webauthn.helpers import base64url_to_bytes
    from webauthn.helpers.structs import (
        AuthenticatorSelectionCriteria,
        AuthenticatorTransport,
        PublicKeyCredentialDescriptor,
        ResidentKeyRequirement,
        UserVerificationRequirement,
    )

    require_confirmed(user)
    assert user.id is not None
    existing = await list_passkeys(user.id)
    if len(existing) >= MAX_PASSKEYS:
        raise PasskeyRefused("too_many", TOO_MANY, count=str(MAX_PASSKEYS))
    rp = relying_party(settings)
    challenge, expires_at = new_challenge(settings)
    options = generate_registration_options(
        rp_id=rp.id,
        rp_name=rp.name,
        user_name=user.email,
        user_id=user_handle(user.id),
        user_display_name=user.name or user.email,
        challenge=challenge,
        timeout=settings.passkey_challenge_ttl_seconds * 1000,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.PREFERRED,
        ),
        # The browser refuses to make a second passkey on an authenticator that has one.
        exclude_credentials=[
            PublicKeyCredentialDescriptor(
                id=base64url_to_bytes(key.credential_id),
                transports=[AuthenticatorTransport(t) for t in key.transports if t in TRANSPORTS],
            )
            for key in existing
        ],
    )
    await _issue(challenge, expires_at, "register", binding, user.id)
    return options_to_json(options)


def clean_name(name: object, default: str) -> str:
    """A passkey's name as stored: white space folded, at most 64 characters, else ``default``."""
    text = " ".join(name.split()) if isinstance(name, str) else ""
    text = "".join(ch for ch in text if ch.isprintable())
    return text[:NAME_MAX] or default[:NAME_MAX]


async def register(
    settings: Settings,
    user: UserModel,
    binding: str,
    credential: Any,
    name: object,
    default_name: str = "Passkey",
) -> Passkey:
    """Verify the browser's answer to :func:`registration_options` and store the passkey,
    named ``name`` (``default_name`` when it is blank).

    The challenge must be this session's, for this user, unused and unexpired. Raises
    :class:`PasskeyRefused` or ``EmailNotConfirmed``.
    """
    from webauthn import verify_registration_response
    from webauthn.helpers import bytes_to_base64url, parse_registration_credential_json

    require_confirmed(user)
    assert user.id is not None
    try:
        parsed = parse_registration_credential_json(credential)
    except Exception:  # malformed JSON, base64 or structure
        raise PasskeyRefused("bad_request", MALFORMED) from None
    challenge = _client_challenge(parsed.response.client_data_json)
    await _consume(challenge, "register", binding, user.id)
    rp = relying_party(settings)
    try:
        verified = verify_registration_response(
            credential=parsed,
            expected_challenge=challenge,
            expected_rp_id=rp.id,
            expected_origin=rp.origin,
        )
    except Exception as exc:  # the library's refusals, and whatever bad input makes it raise
        logger.info("passkey registration of user %s refused: %s", user.id, exc)
        raise PasskeyRefused("not_verified", NOT_VERIFIED) from None
    transports = [str(getattr(t, "value", t)) for t in parsed.response.transports or []]
    passkey = Passkey(
        user_id=user.id,
        credential_id=bytes_to_base64url(verified.credential_id),
        public_key=bytes_to_base64url(verified.credential_public_key),
        sign_count=verified.sign_count,
        name=clean_name(name, default_name),
        transports=[t for t in transports if t in TRANSPORTS],
        aaguid=verified.aaguid,
        backed_up=verified.credential_backed_up,
        created_at=utcnow(),
    )
    try:
        await passkey.insert()
    except DuplicateKeyError:
        raise PasskeyRefused("already_registered", ALREADY) from None
    logger.info("user %s added a passkey", user.id)
    return passkey


# --- signing in --------------------------------------------------------------------------


async def sign_in_options(settings: Settings, binding: str) -> str:
    """The options of ``navigator.credentials.get()`` for a sign-in, as JSON.

    No credentials are listed: the browser offers the passkeys it has for this site
    (discoverable credentials), in its autofill list or its own dialog.
    """
    from webauthn import generate_authentication_options, options_to_json
    from webauthn.helpers.structs import UserVerificationRequirement

    challenge, expires_at = new_challenge(settings)
    options = generate_authentication_options(
        rp_id=relying_party(settings).id,
        challenge=challenge,
        timeout=settings.passkey_challenge_ttl_seconds * 1000,
        user_verification=UserVerificationRequirement.PREFERRED,
    )
    await _issue(challenge, expires_at, "sign_in", binding)
    return options_to_json(options)


@dataclass(frozen=True)
class PasskeySignIn:
    """Who a passkey signed in, and whether the authenticator verified the person (PIN, face)."""

    user: UserModel
    passkey: Passkey
    user_verified: bool


async def authenticate(settings: Settings, binding: str, credential: Any) -> PasskeySignIn:
    """Verify the browser's answer to :func:`sign_in_options`; returns the user to sign in.

    Refused (:class:`PasskeyRefused`): a challenge that is not this session's, used or
    expired; an unknown passkey; a bad signature, origin or RP id; a signature counter
    that did not go up; an account whose address is unproven. ``AccountDisabled`` for a
    deactivated user.
    """
    from webauthn import verify_authentication_response
    from webauthn.helpers import (
        base64url_to_bytes,
        bytes_to_base64url,
        parse_authentication_credential_json,
    )

    try:
        parsed = parse_authentication_credential_json(credential)
    except Exception:  # malformed JSON, base64 or structure
        raise PasskeyRefused("bad_request", MALFORMED) from None
    challenge = _client_challenge(parsed.response.client_data_json)
    await _consume(challenge, "sign_in", binding)
    credential_id = bytes_to_base64url(parsed.raw_id)
    passkey = await Passkey.find_one({"credential_id": credential_id})
    if passkey is None:
        raise PasskeyRefused("unknown_passkey", UNKNOWN)
    handle = parsed.response.user_handle
    if handle is not None and handle != user_handle(passkey.user_id):
        raise PasskeyRefused("not_verified", NOT_VERIFIED)
    rp = relying_party(settings)
    try:
        verified = verify_authentication_response(
            credential=parsed,
            expected_challenge=challenge,
            expected_rp_id=rp.id,
            expected_origin=rp.origin,
            credential_public_key=base64url_to_bytes(passkey.public_key),
            credential_current_sign_count=passkey.sign_count,
        )
    except Exception as exc:  # the library's refusals, and whatever bad input makes it raise
        if _counter_refused(parsed.response.authenticator_data, passkey.sign_count):
            logger.warning(
                "passkey of user %s refused: its signature counter did not go up "
                "(a replayed answer or a copied authenticator)",
                passkey.user_id,
            )
            raise PasskeyRefused("counter", COUNTER) from None
        logger.info("passkey sign-in for user %s refused: %s", passkey.user_id, exc)
        raise PasskeyRefused("not_verified", NOT_VERIFIED) from None
    user = await UserModel.load(passkey.user_id)
    if user is None:  # deleted meanwhile; the passkey has nothing to sign in to
        await passkey.delete()
        raise PasskeyRefused("unknown_passkey", UNKNOWN)
    await _check_proven(user, passkey)
    if not user.is_active:
        raise AccountDisabled("this account is disabled")
    # Only if no other sign-in moved the counter meanwhile: the same answer twice at once
    # cannot both pass.
    moved = await Passkey.get_pymongo_collection().update_one(
        {"_id": passkey.id, "sign_count": passkey.sign_count},
        {"$set": {"sign_count": verified.new_sign_count, "last_used_at": utcnow()}},
    )
    if not moved.matched_count:
        raise PasskeyRefused("counter", COUNTER)
    return PasskeySignIn(user, passkey, verified.user_verified)


def _counter_refused(authenticator_data: bytes, stored: int) -> bool:
    """True when the answer's signature counter is the reason it was refused."""
    from webauthn.helpers import parse_authenticator_data

    try:
        counter = parse_authenticator_data(authenticator_data).sign_count
    except Exception:
        return False
    return (counter > 0 or stored > 0) and counter <= stored


async def _check_proven(user: UserModel, passkey: Passkey) -> None:
    """Refuse a sign-in into an unproven account, or with a passkey added before the proof."""
    proven_at = user.email_verified_at
    if proven_at is None:
        raise PasskeyRefused("email_not_confirmed", UNCONFIRMED)
    if _aware(passkey.created_at) < _aware(proven_at):
        # Added while someone other than the mailbox owner may have been signed in.
        await passkey.delete()
        logger.info("removed a passkey added before user %s proved the address", user.id)
        raise PasskeyRefused("unknown_passkey", UNKNOWN)


# --- managing passkeys -------------------------------------------------------------------


async def rename(user_id: PydanticObjectId, credential_id: str, name: str) -> bool:
    """Rename one of the user's passkeys; False when the user has no such passkey."""
    result = await Passkey.get_pymongo_collection().update_one(
        {"user_id": user_id, "credential_id": credential_id},
        {"$set": {"name": clean_name(name, "Passkey")}},
    )
    return bool(result.matched_count)


async def remove(user_id: PydanticObjectId, credential_id: str) -> bool:
    """Delete one of the user's passkeys; False when the user has no such passkey."""
    result = await Passkey.get_pymongo_collection().delete_one(
        {"user_id": user_id, "credential_id": credential_id}
    )
    if result.deleted_count:
        logger.info("user %s removed a passkey", user_id)
    return bool(result.deleted_count)


async def remove_all(user_id: PydanticObjectId) -> int:
    """Delete every passkey of a user (account deletion, first proof of the address)."""
    result = await Passkey.get_pymongo_collection().delete_many({"user_id": user_id})
    return int(result.deleted_count)


async def remove_user_passkeys(user: UserModel) -> None:
    """A user-data cleaner: the passkeys go with the account."""
    if user.id is not None:
        await remove_all(user.id)
