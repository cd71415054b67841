"""Payments as Stripe's events tell them: a paid subscription invoice or one-time order
becomes a payment whose fees the worker fetches (worker.py); a charge event about a
subscription invoice's charge is that payment's (a refund of it is recorded here), not an
order's."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg

from tessera.billing.orders import queries as orders
from tessera.billing.orders.service import Applied
from tessera.billing.payments import queries
from tessera.billing.payments.queries import NewPayment
from tessera.billing.stripe.objects import Charge
from tessera.shared.sellers import Tenant


def stripe_time(created: int) -> datetime:
    """When Stripe made the event (now, for an event applied without it)."""
    return datetime.fromtimestamp(created, UTC) if created > 0 else datetime.now(UTC)


async def invoice_paid(
    conn: asyncpg.Connection,
    tenant: Tenant,
    invoice: dict[str, Any],
    created: int,
    account: str | None,
) -> None:
    """A subscription invoice was paid: a payment, if money moved (a trial's or a credit
    balance's invoice moves none)."""
    amount = int(invoice.get("amount_paid") or 0)
    invoice_id, currency = invoice.get("id"), invoice.get("currency")
    if amount <= 0 or not isinstance(invoice_id, str) or not isinstance(currency, str):
        return
    new = NewPayment(invoice_id, "invoice", account, currency.lower(), amount, stripe_time(created))
    await queries.add(conn, tenant, new)


async def order_paid(
    conn: asyncpg.Connection, tenant: Tenant, order_id: UUID, account: str | None
) -> None:
    """A one-time order was paid through Stripe: a payment, keyed by its payment intent."""
    order = await orders.get(conn, tenant, order_id)
    if (
        order is None
        or order.source != "purchase"
        or order.paid_at is None
        or not order.payment_intent_id
        or order.amount_total <= 0
    ):
        return
    intent = order.payment_intent_id
    new = NewPayment(
        intent, "order", account, order.currency, order.amount_total, order.paid_at, intent
    )
    await queries.add(conn, tenant, new)


async def charge_event(
    conn: asyncpg.Connection,
    tenant: Tenant,
    event_id: str,
    event_type: str,
    charge: Charge,
    created: int,
) -> Applied | None:
    """`charge.succeeded` or `charge.refunded` of a known payment's charge. A subscription
    invoice's is applied here (a refund recorded at Stripe's time, once per event); None
    for anything else (an order's charge, or one billing cannot place yet), which the
    orders' handlers take. A refund of either kind has its fees fetched again."""
    payment = await queries.find_by_charge(conn, tenant, charge.payment_intent, charge.id)
    if payment is None:
        return None
    if event_type == "charge.refunded":
        await queries.note_refunded(conn, tenant, payment.source, charge.amount_refunded)
        if payment.kind != "invoice":
            return None
        added = await queries.add_refund(
            conn, tenant, event_id, payment.source, charge.amount_refunded, stripe_time(created)
        )
        detail = "refund recorded" if added else "refund already recorded"
        return Applied(None, f"{detail} (invoice {payment.source})")
    if payment.kind != "invoice":
        return None
    return Applied(None, f"the payment of invoice {payment.source}")
