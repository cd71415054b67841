"""The built-in test checkout: Stripe Checkout's stand-in when no Stripe key is set.

Its Pay button does what Stripe does after a payment: it sends `checkout.session.completed`
and `charge.succeeded`, shaped like Stripe's and signed with the webhook secret, over HTTP
to billing's own `/webhooks/stripe`. Dev controls send the refund and dispute events the
same way. The purchase therefore runs offline through exactly the production code path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx

from tessera.billing.catalog.schemas import CatalogItem
from tessera.billing.checkout import stripe_shapes as shapes
from tessera.billing.settings import BillingSettings
from tessera.billing.stripe.return_urls import SESSION_PLACEHOLDER, ReturnUrls
from tessera.shared.http.problems import NotFound, Problem
from tessera.shared.sellers import Tenant


class UnknownStandInSession(NotFound):
    slug = "unknown-checkout-session"
    title = "No such checkout session"


class DeliveryFailed(Problem):
    status = 502
    slug = "webhook-delivery-failed"
    title = "The test checkout could not deliver its webhook"


@dataclass(frozen=True)
class StandInSession:
    id: str
    sku: str
    quantity: int
    email: str | None
    amount_total: int
    currency: str
    status: str
    payment_intent_id: str
    charge_id: str
    customer_id: str
    # The seller's own return pages (None: the test checkout's confirmation page, the site).
    success_url: str | None = None
    cancel_url: str | None = None

    def success_target(self) -> str | None:
        """Where Pay sends the buyer, as Stripe does: the success URL, its
        `{CHECKOUT_SESSION_ID}` filled in."""
        if self.success_url is None:
            return None
        return self.success_url.replace(SESSION_PLACEHOLDER, self.id)


COLUMNS = (
    "id, sku, quantity, email, amount_total, currency, status, payment_intent_id, charge_id,"
    " customer_id, success_url, cancel_url"
)


async def create_session(
    conn: asyncpg.Connection,
    tenant: Tenant,
    item: CatalogItem,
    quantity: int,
    email: str | None,
    return_to: ReturnUrls | None = None,
) -> StandInSession:
    session = StandInSession(
        id=shapes.stripe_id("cs"),
        sku=item.sku,
        quantity=quantity,
        email=email,
        amount_total=item.unit_amount * quantity,
        currency=item.currency,
        status="open",
        payment_intent_id=shapes.stripe_id("pi"),
        charge_id=shapes.stripe_id("ch"),
        customer_id=shapes.stripe_id("cus"),
        success_url=return_to.success_url if return_to else None,
        cancel_url=return_to.cancel_url if return_to else None,
    )
    await conn.execute(
        f"INSERT INTO test_checkout_sessions ({COLUMNS}, seller_id, mode)"  # noqa: S608
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        session.id,
        session.sku,
        session.quantity,
        session.email,
        session.amount_total,
        session.currency,
        session.status,
        session.payment_intent_id,
        session.charge_id,
        session.customer_id,
        session.success_url,
        session.cancel_url,
        tenant.seller_id,
        tenant.mode,
    )
    return session


async def get_session(conn: asyncpg.Connection, tenant: Tenant, session_id: str) -> StandInSession:
    row = await conn.fetchrow(
        f"SELECT {COLUMNS} FROM test_checkout_sessions"  # noqa: S608
        " WHERE id = $1 AND seller_id = $2 AND mode = $3",
        session_id,
        tenant.seller_id,
        tenant.mode,
    )
    if row is None:
        raise UnknownStandInSession("This checkout session does not exist or has expired.")
    return StandInSession(**dict(row))


async def complete_session(
    conn: asyncpg.Connection, tenant: Tenant, session_id: str, email: str
) -> None:
    await conn.execute(
        "UPDATE test_checkout_sessions SET status = 'complete', email = $2"
        " WHERE id = $1 AND seller_id = $3 AND mode = $4",
        session_id,
        email,
        tenant.seller_id,
        tenant.mode,
    )


def payment_events(session: StandInSession, email: str, receipt_url: str) -> list[dict[str, Any]]:
    checkout = shapes.checkout_session(
        session_id=session.id,
        email=email,
        sku=session.sku,
        quantity=session.quantity,
        amount_total=session.amount_total,
        currency=session.currency,
        customer=session.customer_id,
        payment_intent=session.payment_intent_id,
    )
    charge = session_charge(session, receipt_url=receipt_url)
    return [
        shapes.event("checkout.session.completed", checkout),
        shapes.event("charge.succeeded", charge),
    ]


def session_charge(
    session: StandInSession, *, amount_refunded: int = 0, receipt_url: str | None = None
) -> dict[str, Any]:
    return shapes.charge(
        charge_id=session.charge_id,
        amount=session.amount_total,
        currency=session.currency,
        customer=session.customer_id,
        payment_intent=session.payment_intent_id,
        amount_refunded=amount_refunded,
        receipt_url=receipt_url,
    )


def refund_event(session: StandInSession, amount: int) -> dict[str, Any]:
    charge = session_charge(session, amount_refunded=min(amount, session.amount_total))
    return shapes.event("charge.refunded", charge)


def dispute_event(session: StandInSession, status: str) -> dict[str, Any]:
    dispute = shapes.dispute(
        dispute_id=f"dp_test_{session.charge_id.removeprefix('ch_test_')}",
        charge_id=session.charge_id,
        payment_intent=session.payment_intent_id,
        amount=session.amount_total,
        currency=session.currency,
        status=status,
    )
    event_type = "charge.dispute.created" if status == "needs_response" else "charge.dispute.closed"
    return shapes.event(event_type, dispute)


async def deliver(settings: BillingSettings, events: list[dict[str, Any]]) -> None:
    """POST each event, signed, to billing's own ingress, as Stripe would."""
    secret = settings.stripe_webhook_secrets[0].get_secret_value()
    url = str(settings.public_url).rstrip("/") + "/webhooks/stripe"
    async with httpx.AsyncClient(timeout=10.0) as client:
        for payload in events:
            body, signature = shapes.signed(payload, secret)
            try:
                response = await client.post(
                    url,
                    content=body,
                    headers={"stripe-signature": signature, "content-type": "application/json"},
                )
            except httpx.HTTPError as error:
                raise DeliveryFailed(f"Could not reach {url}.") from error
            if response.status_code >= 300:
                raise DeliveryFailed(f"The ingress answered {response.status_code}.")
