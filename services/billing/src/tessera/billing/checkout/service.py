"""Checkout verbs: start a checkout with Stripe, or with the test stand-in."""

from __future__ import annotations

import uuid

import asyncpg

from tessera.billing.catalog.service import get_buyable
from tessera.billing.checkout import standin
from tessera.billing.checkout.stripe_gateway import CheckoutLink, StripeGateway
from tessera.billing.settings import BillingSettings
from tessera.shared.http.problems import Problem


class QuantityNotAllowed(Problem):
    status = 422
    slug = "quantity-not-allowed"
    title = "Quantity not allowed"


async def start_checkout(
    pool: asyncpg.Pool,
    settings: BillingSettings,
    gateway: StripeGateway | None,
    sku: str,
    quantity: int,
    email: str | None,
) -> CheckoutLink:
    """A checkout URL for `quantity` x `sku`: Stripe's, or the test checkout's."""
    async with pool.acquire() as conn:
        item = await get_buyable(conn, sku)
        if quantity > item.max_quantity:
            raise QuantityNotAllowed(f"At most {item.max_quantity} per order.")
        if gateway is None:
            session = await standin.create_session(conn, item, quantity, email)
            base = str(settings.public_url).rstrip("/")
            return CheckoutLink(session.id, f"{base}/test-checkout/{session.id}")
    return await gateway.create_checkout_session(
        item, quantity, email, idempotency_key=f"checkout-{uuid.uuid4()}"
    )
