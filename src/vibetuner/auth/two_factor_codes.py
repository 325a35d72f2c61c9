"""Two-factor codes: TOTP (RFC 6238, what authenticator apps show) and recovery codes.

Nothing here knows about HTTP. The secret is stored encrypted; recovery codes only as
hashes. Every code check is counted by the sign-in rate limits (per user and per client
address) before it is checked, and accepting a code is one conditional update, so two
requests with the same code cannot both succeed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from beanie import PydanticObjectId
from pymongo.errors import DuplicateKeyError

from vibetuner.auth import rate_limit
from vibetuner.auth.crypto import TokenCipher
from vibetuner.config import Settings
from vibetuner.errors import TwoFactorAlreadyOn, TwoFactorCodeRefused
from vibetuner.models.mixins import utcnow
from vibetuner.models.two_factor import TwoFactorSecret
from vibetuner.models.user import UserModel
from vibetuner.services.keys import derive_key

RECOVERY_CODES = 10
# 5 bytes: ten hex digits, shown as two groups of five.
RECOVERY_CODE_BYTES = 5
DIGITS = 6
INTERVAL = 30
# Codes of the step before and after the current one are accepted too (clock drift).
DRIFT_STEPS = 1


@dataclass(frozen=True)
class Enrolment:
    """A secret waiting for its first code: what the account page shows to scan."""

    secret: str
    uri: str


def cipher(settings: Settings) -> TokenCipher:
    """The cipher of two-factor secrets.

    It encrypts with the first ``TOKEN_ENCRYPTION_KEY`` key, else with a key derived from
    the signing key (``SESSION_KEY``); it decrypts with any of them, so setting
    ``TOKEN_ENCRYPTION_KEY`` later keeps the secrets stored before readable.
    """
    derived = base64.urlsafe_b64encode(derive_key(settings, "two-factor secrets")).decode()
    keys: list[str] = []
    if settings.token_encryption_key is not None:
        raw = settings.token_encryption_key.get_secret_value()
        keys = [part.strip() for part in raw.split(",") if part.strip()]
    return TokenCipher([*keys, derived])


def normalize_code(code: str) -> str:
    """A typed code without spaces and dashes, lower-cased (recovery codes are hex)."""
    return "".join(ch for ch in code if ch not in " -\t").lower()[:64]


def hash_recovery_code(user_id: PydanticObjectId, code: str) -> str:
    """The stored form of a recovery code: SHA-256 of the user id and the normalized code.

    The codes are random (40 bits) and every guess is rate-limited, so a fast hash is
    enough; the user id keeps equal codes of two users apart.
    """
    return hashlib.sha256(f"{user_id}:{normalize_code(code)}".encode()).hexdigest()


def new_recovery_codes() -> list[str]:
    """Ten fresh recovery codes, as shown to the user (``1a2b3-c4d5e``)."""
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = secrets.token_hex(RECOVERY_CODE_BYTES)
        codes.append(f"{raw[:5]}-{raw[5:]}")
    return codes


def provisioning_uri(secret: str, user: UserModel, settings: Settings) -> str:
    """The ``otpauth://`` address an authenticator app reads from the QR code."""
    import pyotp

    return pyotp.TOTP(secret, digits=DIGITS, interval=INTERVAL).provisioning_uri(
        name=user.email, issuer_name=settings.app_name
    )


def qr_svg(uri: str) -> str:
    """The QR code of ``uri`` as inline SVG, drawn here (no outside service, no script).

    Only presentation attributes, no ``style``: the Content-Security-Policy allows it.
    """
    import segno

    svg: str = segno.make(uri, error="m").svg_inline(
        scale=4, dark="#000", light="#fff", omitsize=True, svgclass="vt-qr", lineclass=None
    )
    return svg


def matching_step(secret: str, code: str, at: datetime) -> int | None:
    """The time step whose code ``code`` is (within the drift), or None."""
    import pyotp

    if len(code) != DIGITS or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=INTERVAL)
    current = totp.timecode(at)
    found = None
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        # Every step is compared, in constant time: the answer's timing tells nothing.
        if hmac.compare_digest(totp.generate_otp(step), code):
            found = step
    return found


async def _count_attempt(
    user_id: PydanticObjectId, settings: Settings, client_ip: str | None
) -> None:
    window = settings.two_factor_rate_window_seconds
    if client_ip:
        await rate_limit.enforce(
            "two-factor-ip", client_ip, limit=settings.two_factor_rate_per_ip, window_seconds=window
        )
    await rate_limit.enforce(
        "two-factor-user",
        str(user_id),
        limit=settings.two_factor_rate_per_user,
        window_seconds=window,
    )


async def enabled(user_id: PydanticObjectId | None) -> bool:
    """True when the user has two-factor codes turned on (a confirmed secret)."""
    if user_id is None:
        return False
    found = await TwoFactorSecret.get_pymongo_collection().find_one(
        {"user_id": user_id, "confirmed_at": {"$ne": None}}, {"_id": 1}
    )
    return found is not None


async def status(user_id: PydanticObjectId | None) -> TwoFactorSecret | None:
    """The user's two-factor record (confirmed or still being set up), or None."""
    if user_id is None:
        return None
    return await TwoFactorSecret.find_one({"user_id": user_id})


async def begin(user: UserModel, settings: Settings) -> Enrolment:
    """Start turning two-factor on: a new secret, stored encrypted and unconfirmed.

    Starting again replaces a secret that was never confirmed. Raises
    :class:`TwoFactorAlreadyOn` when it is on already.
    """
    import pyotp

    secret = pyotp.random_base32()
    collection = TwoFactorSecret.get_pymongo_collection()
    try:
        # Matches only an unconfirmed record; with a confirmed one the upsert's insert
        # hits the unique index on user_id.
        await collection.update_one(
            {"user_id": user.id, "confirmed_at": None},
            {
                "$set": {
                    "secret": cipher(settings).encrypt(secret),
                    "created_at": utcnow(),
                    "last_step": 0,
                    "recovery_codes": [],
                }
            },
            upsert=True,
        )
    except DuplicateKeyError:
        raise TwoFactorAlreadyOn("two-factor codes are already on") from None
    return Enrolment(secret, provisioning_uri(secret, user, settings))


async def enrolment(user: UserModel, settings: Settings) -> Enrolment | None:
    """The secret being set up (to show its QR code again), or None."""
    record = await status(user.id)
    if record is None or record.confirmed_at is not None:
        return None
    secret = cipher(settings).decrypt(record.secret)
    return Enrolment(secret, provisioning_uri(secret, user, settings))


async def confirm(
    user: UserModel, code: str, settings: Settings, *, client_ip: str | None = None
) -> list[str]:
    """Turn two-factor on with the first code from the app; returns the recovery codes.

    The codes are returned this once; only their hashes are kept. Raises
    ``RateLimitExceeded`` or :class:`TwoFactorCodeRefused`.
    """
    assert user.id is not None
    await _count_attempt(user.id, settings, client_ip)
    record = await status(user.id)
    if record is None or record.confirmed_at is not None:
        raise TwoFactorCodeRefused("start turning two-factor on first")
    step = matching_step(cipher(settings).decrypt(record.secret), normalize_code(code), utcnow())
    if step is None:
        raise TwoFactorCodeRefused("that code is not the one your app shows now")
    codes = new_recovery_codes()
    result = await TwoFactorSecret.get_pymongo_collection().update_one(
        {"_id": record.id, "confirmed_at": None, "secret": record.secret},
        {
            "$set": {
                "confirmed_at": utcnow(),
                "last_step": step,
                "recovery_codes": [hash_recovery_code(user.id, c) for c in codes],
            }
        },
    )
    if not result.modified_count:  # confirmed or restarted meanwhile
        raise TwoFactorCodeRefused("that code is not the one your app shows now")
    return codes


async def verify(
    user_id: PydanticObjectId,
    code: str,
    settings: Settings,
    *,
    client_ip: str | None = None,
    recovery: bool = True,
) -> str:
    """Check a code of a user with two-factor on and use it up; returns ``"totp"`` or
    ``"recovery"``.

    A TOTP code is accepted once: its step must be newer than the last accepted one. A
    recovery code is removed as it is accepted. Raises ``RateLimitExceeded`` (counted
    before the check) or :class:`TwoFactorCodeRefused`.
    """
    await _count_attempt(user_id, settings, client_ip)
    record = await TwoFactorSecret.find_one({"user_id": user_id, "confirmed_at": {"$ne": None}})
    if record is None:
        raise TwoFactorCodeRefused("two-factor codes are not on for this account")
    typed = normalize_code(code)
    collection = TwoFactorSecret.get_pymongo_collection()
    step = matching_step(cipher(settings).decrypt(record.secret), typed, utcnow())
    if step is not None:
        used = await collection.update_one(
            {"_id": record.id, "last_step": {"$lt": step}}, {"$set": {"last_step": step}}
        )
        if used.modified_count:
            return "totp"
        raise TwoFactorCodeRefused("that code was already used; wait for the next one")
    if recovery and len(typed) == 2 * RECOVERY_CODE_BYTES:
        hashed = hash_recovery_code(user_id, typed)
        pulled = await collection.update_one(
            {"_id": record.id, "recovery_codes": hashed}, {"$pull": {"recovery_codes": hashed}}
        )
        if pulled.modified_count:
            return "recovery"
    raise TwoFactorCodeRefused("that code is not valid")


async def regenerate_recovery_codes(
    user: UserModel, code: str, settings: Settings, *, client_ip: str | None = None
) -> list[str]:
    """New recovery codes (the old ones stop working), after a code from the app."""
    assert user.id is not None
    await verify(user.id, code, settings, client_ip=client_ip, recovery=False)
    codes = new_recovery_codes()
    await TwoFactorSecret.get_pymongo_collection().update_one(
        {"user_id": user.id, "confirmed_at": {"$ne": None}},
        {"$set": {"recovery_codes": [hash_recovery_code(user.id, c) for c in codes]}},
    )
    return codes


async def disable(
    user: UserModel, code: str, settings: Settings, *, client_ip: str | None = None
) -> None:
    """Turn two-factor off after a fresh code (from the app, or a recovery code)."""
    assert user.id is not None
    await verify(user.id, code, settings, client_ip=client_ip)
    await remove(user)


async def cancel(user: UserModel) -> bool:
    """Drop a secret that was never confirmed; False when there was none."""
    result = await TwoFactorSecret.get_pymongo_collection().delete_one(
        {"user_id": user.id, "confirmed_at": None}
    )
    return bool(result.deleted_count)


async def remove(user: UserModel) -> None:
    """Delete the user's two-factor record (turned off, or the account deleted)."""
    await TwoFactorSecret.get_pymongo_collection().delete_many({"user_id": user.id})


async def recovery_codes_left(user_id: PydanticObjectId | None) -> int:
    """How many unused recovery codes the user has."""
    record = await status(user_id)
    return len(record.recovery_codes) if record is not None else 0
