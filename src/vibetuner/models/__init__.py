"""Core Beanie documents of vibetuner.

Every Document class named in ``__all__`` is registered by the lifespan (together with
the app's own models), so a core model added to this list is registered everywhere.
"""

from beanie import Document

from vibetuner.models.blob import Blob, BlobStatus
from vibetuner.models.email_verification import EmailVerificationToken
from vibetuner.models.mixins import TimeStampMixin
from vibetuner.models.oauth import OAuthAccount
from vibetuner.models.rate_limit import RateLimitCounter
from vibetuner.models.session import UserSession
from vibetuner.models.user import UserModel

# UserModel refers to OAuthAccount by name (the two link to each other).
UserModel.model_rebuild(_types_namespace={"OAuthAccount": OAuthAccount})

__all__ = [
    "UserModel",
    "OAuthAccount",
    "EmailVerificationToken",
    "Blob",
    "TimeStampMixin",
    "BlobStatus",
    "RateLimitCounter",
    "UserSession",
]


def core_document_models() -> list[type[Document]]:
    """The Document classes listed in ``__all__``, in order."""
    found = (globals()[name] for name in __all__)
    return [obj for obj in found if isinstance(obj, type) and issubclass(obj, Document)]
