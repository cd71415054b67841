"""Checkout verbs: start a checkout with Stripe, or with the test stand-in; tell its
success page what became of it."""

from __future__ import annotations

import uuid

import asyncpg

from tessera.billing.catalog.service import get_buyable
from tessera.billing.checkout import standin
from tessera.billing.checkout.schemas import CheckoutOutcome
from tessera.billing.context import PUBLIC_TENANT
from tessera.billing.orders import queries as orders
from tessera.billing.settings import BillingSettings
from tessera.billing.stripe import return_urls
from tessera.billing.stripe.accounts import StripeAccount
from tessera.billing.stripe.fees import application_fee_amount, platform_fee_for
from tessera.billing.stripe.gateway import CheckoutLink, StripeGateway
from tessera.billing.stripe.return_urls import ReturnUrls
from tessera.billing.subscriptions import queries as subscriptions
from tessera.shared.http.problems import Problem
from tessera.shared.sellers import Tenant


class NotConnected(Problem):
    status = 409
    slug = "not-connected"
    title = "No Stripe account is connected for this seller"


class TestCheckoutUnavailable(Problem):
    status = 409
    slug = "test-checkout-unavailable"
    title = "Test-mode checkout is not available for this seller"


class QuantityNotAllowed(Problem):
    status = 422
    slug = "quantity-not-allowed"
    title = "Quantity not allowed"


async def start_checkout(
    pool: asyncpg.Pool,
    tenant: Tenant,
    settings: BillingSettings,
    gateway: StripeGateway | None,
    sku: str,
    quantity: int,
    email: str | None,
    return_to: ReturnUrls | None = None,
) -> CheckoutLink:
    """A checkout URL for `quantity` x the tenant's `sku`: Stripe's (on the platform's
    account, or on the seller's connected one with the platform's fee), or the test
    checkout's. The buyer returns to `return_to` (None: the defaults; on the test checkout,
    its own confirmation page)."""
    async with pool.acquire() as conn:
        if gateway is None and tenant != PUBLIC_TENANT:
            # The test checkout delivers its events as the platform's (the home seller's,
            # live): it can sell only that tenant's SKUs. Connect needs a Stripe key.
            if tenant.mode == "live":
                raise NotConnected("Connect a Stripe account before selling with a live key.")
            raise TestCheckoutUnavailable(
                "Test-mode checkout for a seller's catalog needs a connected Stripe account."
            )
        on = None if gateway is None else await gateway.accounts().account_for(conn, tenant)
        if on is not None and not isinstance(on, StripeAccount):
            raise NotConnected(f"Connect a Stripe account in {tenant.mode} mode first.")
        item = await get_buyable(conn, tenant, sku)
        if quantity > item.max_quantity:
            raise QuantityNotAllowed(f"At most {item.max_quantity} per order.")
        if gateway is None:
            session = await standin.create_session(conn, tenant, item, quantity, email, return_to)
            base = str(settings.public_url).rstrip("/")
            return CheckoutLink(session.id, f"{base}/test-checkout/{session.id}")
    assert on is not None
    fee = 0
    if on.connected:
        fee = application_fee_amount(
            platform_fee_for(settings, tenant), item.unit_amount * quantity
        )
    return await gateway.create_checkout_session(
        item,
        quantity,
        email,
        idempotency_key=f"checkout-{uuid.uuid4()}",
        return_to=return_to or return_urls.defaults(settings),
        on=on,
        application_fee=fee,
    )


async def outcome(pool: asyncpg.Pool, session_id: str) -> CheckoutOutcome:
    """The checkout's order or subscription, whichever seller's it is, as its success page
    may show it to whoever holds the URL."""
    async with pool.acquire() as conn:
        order = await orders.find_by_checkout_session_of_any_tenant(conn, session_id)
        if order is not None:
            return order_outcome(session_id, order)
        subscription = await subscriptions.by_checkout_session_of_any_tenant(conn, session_id)
    if subscription is not None:
        return subscription_outcome(session_id, subscription)
    return CheckoutOutcome(session_id=session_id, state="pending")


def order_outcome(session_id: str, order: orders.Order) -> CheckoutOutcome:
    return CheckoutOutcome(
        session_id=session_id,
        state=order.status,
        kind="payment",
        order_id=order.id,
        product=order.product,
        sku=order.sku,
        quantity=order.quantity,
        seats=order.seats,
        email_hint=mask_email(order.email),
        account_ready=order.account_id is not None,
    )


def subscription_outcome(session_id: str, row: asyncpg.Record) -> CheckoutOutcome:
    """A subscription is `pending` until its own events have told billing its status (the
    completed checkout may arrive first)."""
    email: str | None = row["email"]
    return CheckoutOutcome(
        session_id=session_id,
        state=row["status"] or "pending",
        kind="subscription",
        product=row["product"],
        tier=row["tier"],
        interval=row["interval"],
        trial_end=row["trial_end"],
        email_hint=mask_email(email) if email else None,
        account_ready=row["account_id"] is not None,
    )


def mask_email(address: str) -> str:
    """`jane.doe@example.com` -> `j•••@e•••.com`: enough for the buyer to recognise which
    address, not enough for someone else holding the link to learn it."""
    local, _, domain = address.partition("@")
    host, dot, tld = domain.rpartition(".")
    if not host:  # no dot in the domain
        host, dot, tld = domain, "", ""
    return f"{local[:1]}•••@{host[:1]}•••{dot}{tld}"
