"""A third-party feature, written only against vibetuner's public API: billing.

It uses every hook of ``vibetuner.Feature``; ``tests/thirdparty/test_billing.py`` proves
each one works. Nothing here imports a private vibetuner module.
"""

from tests.thirdparty.billing.feature import (
    BillingFeature,
    BillingSettings,
    Invoice,
    PaymentGateway,
    PaymentRequired,
    mark_paid,
)

__all__ = [
    "BillingFeature",
    "BillingSettings",
    "Invoice",
    "PaymentGateway",
    "PaymentRequired",
    "mark_paid",
]
