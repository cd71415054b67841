"""The platform's fee on a connected seller's payments (Stripe's application fee).

One setting for every seller for now (`PLATFORM_FEE_PERCENT`, default 0): this is the seam
where the fee comes to depend on the seller's platform plan. A payment-mode checkout takes
it as `payment_intent_data.application_fee_amount` (`application_fee_amount` below); a
subscription as `subscription_data.application_fee_percent` (the percent as is). Only a
connected account pays one: the home seller's account is the platform's own."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from tessera.billing.settings import BillingSettings
from tessera.shared.sellers import Tenant


def platform_fee_for(settings: BillingSettings, tenant: Tenant) -> Decimal:
    """The fee on the tenant's payments, in percent (0: none)."""
    if tenant.is_home:
        return Decimal(0)
    return settings.platform_fee_percent


def application_fee_amount(percent: Decimal, amount_total: int) -> int:
    """The fee on a payment of `amount_total` (minor units), rounded half up to a unit."""
    return int((Decimal(amount_total) * percent / 100).quantize(Decimal(1), ROUND_HALF_UP))
