"""The platform plan: which sellers pay for Tessera (docs/sellers.md, "Platform plan").

A seller pays by subscribing to the home seller's live tier `platform`; billing's
subscription events about it name the paying seller (`platform_for`). Auth keeps each
seller's plan status on its row and publishes it in the directory record, where every
process's key check reads it in memory.
"""

from __future__ import annotations

import asyncpg

from tessera.auth.audit import service as audit
from tessera.auth.sellers import queries
from tessera.auth.sellers.service import Seller, publish
from tessera.shared import inbox
from tessera.shared.events.auth import PlanStatus
from tessera.shared.events.billing import SubscriptionEvent, SubscriptionStatus
from tessera.shared.sellers import HOME_LIVE, HOME_SELLER_ID, Tenant

CONSUMER = "auth.platform_plan"

PLAN_OF: dict[SubscriptionStatus, PlanStatus] = {
    "trialing": "active",
    "active": "active",
    "past_due": "past_due",
    # Its first payment not made yet: no plan until it is.
    "incomplete": "none",
    "incomplete_expired": "ended",
    "canceled": "ended",
    "unpaid": "ended",
    "paused": "ended",
}


def is_platform_plan(event: SubscriptionEvent) -> bool:
    """Only the home seller's live subscriptions can pay for a seller's plan: a seller's own
    customer cannot name another seller (the field is set by billing's checkout in the
    home seller's tenant alone, and checked again here)."""
    return (
        event.platform_for is not None
        and event.platform_for != HOME_SELLER_ID
        and event.tenant == HOME_LIVE
    )


async def on_subscription(pool: asyncpg.Pool, event: SubscriptionEvent) -> Seller | None:
    """Apply a platform-plan subscription event once; the seller's new record (published),
    or None when it is no plan's, a repeat, or older than what the seller holds."""
    if not is_platform_plan(event) or event.platform_for is None:
        return None
    async with inbox.first_delivery(pool, event, CONSUMER) as conn:
        if conn is None:
            return None
        status = PLAN_OF[event.status]
        row = await queries.set_plan(
            conn,
            event.platform_for,
            event.subscription_id,
            event.sequence,
            event.started_at,
            status,
            event.grace_until if status == "past_due" else None,
        )
        if row is None:
            return None
        seller = Seller.of(row)
        await publish(conn, seller)
        await audit.record(
            conn,
            "seller.plan_changed",
            Tenant(seller.id, "live"),
            plan_status=status,
            subscription=event.subscription_id,
            sequence=event.sequence,
        )
        return seller
