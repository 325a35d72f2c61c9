"""What a signed-in user does to their own account: profile, picture, providers, deletion."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

from beanie import PydanticObjectId

from vibetuner.blobs.store import BlobStore
from vibetuner.errors import EmailNotConfirmed, LastSignInMethod, UnsupportedPicture
from vibetuner.i18n import N_
from vibetuner.models.blob import Blob
from vibetuner.models.email_verification import EmailVerificationToken
from vibetuner.models.oauth import OAuthAccount
from vibetuner.models.session import UserSession
from vibetuner.models.user import UserModel
from vibetuner.services.images import check_pixels, image_size

logger = logging.getLogger(__name__)

PICTURE_MAX_SIZE = 2 * 1024 * 1024
PICTURE_NAMESPACE = "avatars"
# The first bytes of each accepted image format; the client's content type is not trusted.
PICTURE_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)

CONFIRM_FIRST = N_(
    "Confirm your email address first: sign in with a link sent to it, then change your profile."
)

#: Called with a user about to be deleted, to remove the app's own data of that user.
UserDataCleaner = Callable[[UserModel], Awaitable[None]]


def picture_type(head: bytes) -> str:
    """The image type of a file starting with ``head``; raises ``UnsupportedPicture``."""
    for signature, content_type in PICTURE_SIGNATURES:
        if head.startswith(signature):
            return content_type
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    raise UnsupportedPicture("the picture must be a PNG, JPEG, GIF or WebP image")


def require_confirmed(user: UserModel) -> None:
    """Raise ``EmailNotConfirmed`` unless the user's address is proven.

    Until the mailbox owner signs in, whoever is signed in may be someone else; what they
    attach would greet the owner (and the proof clears the profile anyway).
    """
    if user.email_verified_at is None:
        raise EmailNotConfirmed(CONFIRM_FIRST)


async def rename(user: UserModel, name: str) -> UserModel:
    """Set the display name (blank clears it); refused while the address is unproven."""
    require_confirmed(user)
    cleaned = " ".join(name.split())[:200] or None
    await user.set({UserModel.name: cleaned})
    return user


async def set_picture(user: UserModel, store: BlobStore, data: bytes, filename: str) -> Blob:
    """Store ``data`` as the user's picture (checked image, at most 2 MiB); drops the old one.

    Refused while the address is unproven (``EmailNotConfirmed``). The image's size is
    read from its header: one without a readable header is refused
    (``UnsupportedPicture``), one over ``IMAGE_MAX_PIXELS`` too (``ImageTooLarge``), so
    no browser or admin preview ever decodes a decompression bomb.
    """
    require_confirmed(user)
    content_type = picture_type(data[:16])
    size = image_size(data)
    if size is None:
        raise UnsupportedPicture("the picture's header cannot be read; it may be damaged")
    check_pixels(size, store.settings.image_max_pixels)
    blob = await store.put(
        data,
        filename=filename or "picture",
        content_type=content_type,
        uploaded_by=user,
        namespace=PICTURE_NAMESPACE,
        max_size=PICTURE_MAX_SIZE,
    )
    previous = await own_picture(user)
    await user.set({UserModel.picture: f"/blobs/{blob.id}/content"})
    if previous is not None:
        await store.delete(previous)
    return blob


def picture_blob_id(user: UserModel) -> PydanticObjectId | None:
    """The blob id named by the user's picture when it is a path to a stored file.

    Only the path's shape is checked: :func:`own_picture` says whether that file is
    really the user's picture.
    """
    picture = user.picture or ""
    if picture.startswith("/blobs/") and picture.endswith("/content"):
        raw = picture.removeprefix("/blobs/").removesuffix("/content")
        if PydanticObjectId.is_valid(raw):
            return PydanticObjectId(raw)
    return None


async def own_picture(user: UserModel) -> Blob | None:
    """The stored file of the user's picture: one the user uploaded as a picture, else None.

    A picture field may name any file (a value stored before provider pictures were
    checked, or set by an admin); a picture change must never delete someone else's.
    """
    blob_id = picture_blob_id(user)
    if blob_id is None:
        return None
    blob = await Blob.get(blob_id)
    if blob is None or blob.namespace != PICTURE_NAMESPACE:
        return None
    owner = blob.uploaded_by
    owner_id = getattr(getattr(owner, "ref", None), "id", None) or getattr(owner, "id", None)
    return blob if owner_id is not None and owner_id == user.id else None


async def remove_picture(user: UserModel, store: BlobStore | None) -> None:
    """Clear the picture, deleting the stored file when it is the user's own picture."""
    previous = await own_picture(user)
    await user.set({UserModel.picture: None})
    if previous is not None and store is not None:
        await store.delete(previous)


async def unlink_provider(user: UserModel, provider: str, *, email_sign_in: bool) -> bool:
    """Remove the user's link to ``provider``; False when there was none.

    Raises ``LastSignInMethod`` when it is the only way left to sign in: no other
    provider is linked and email sign-in is not offered.
    """
    accounts = await OAuthAccount.find({"user.$id": user.id}).to_list()
    mine = [account for account in accounts if account.provider == provider]
    if not mine:
        return False
    if not email_sign_in and len(accounts) == len(mine):
        raise LastSignInMethod(
            f"{provider} is the only way to sign in to this account; link another first"
        )
    await OAuthAccount.find({"_id": {"$in": [account.id for account in mine]}}).delete()
    return True


async def delete_account(
    user: UserModel,
    store: BlobStore | None,
    cleaners: Sequence[UserDataCleaner] = (),
    remove_file: Callable[[Blob], Awaitable[None]] | None = None,
) -> None:
    """Delete the user and everything of theirs: the app's data (``cleaners``), files
    (objects first), provider links, sign-in links and sessions.

    Sessions go first, so the account is signed out everywhere even if a later step
    fails; a file whose object cannot be removed stops the deletion with
    ``BlobStorageError`` (the user still exists and can try again). ``remove_file``
    hands each file to something else instead (a background job).
    """
    assert user.id is not None
    await user.sign_out_everywhere()
    for cleaner in cleaners:
        await cleaner(user)
    blobs = await Blob.find({"uploaded_by.$id": user.id}).to_list()
    if blobs and store is None and remove_file is None:
        raise RuntimeError("the user has files but blob storage is not running")
    for blob in blobs:
        if remove_file is not None:
            await remove_file(blob)
        else:
            await store.delete(blob)  # type: ignore[union-attr]
    await OAuthAccount.find({"user.$id": user.id}).delete()
    await EmailVerificationToken.find({"email": user.email}).delete()
    await UserSession.find({"user_id": user.id}).delete()
    await user.delete()
    logger.info("deleted user %s and %d file(s)", user.id, len(blobs))
