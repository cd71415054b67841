"""The platform plan: which sellers pay for Tessera (docs/sellers.md, "Platform plan").

A seller pays by subscribing to the home seller's live tier `platform`; billing's
subscription events about it name the paying seller (`platform_for`). Auth keeps each such
subscription's latest state (`platform_plan_subscriptions`), makes the best of a seller's
subscriptions its plan, on the seller's row, and publishes it in the directory record, where
every process's key check reads it in memory. The best, not the latest: a second
subscription (one made in Stripe's dashboard, say) ending must not suspend a seller another
still pays for.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

import asyncpg

from tessera.auth.audit import service as audit
from tessera.auth.sellers import queries
from tessera.auth.sellers.service import Seller, publish
from tessera.shared import inbox
from tessera.shared.events.auth import PlanStatus
from tessera.shared.events.billing import SubscriptionEvent, SubscriptionStatus
from tessera.shared.sellers import HOME_LIVE, HOME_SELLER_ID, PLATFORM_TIER, Tenant

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


# Which of a seller's subscriptions decides its plan: one in force beats one past due (the
# latest grace among those), which beats one ended.
RANK: dict[PlanStatus, int] = {"active": 3, "past_due": 2, "ended": 1, "none": 0}
NEVER = datetime.min.replace(tzinfo=UTC)


def names_a_seller(event: SubscriptionEvent) -> bool:
    """A home-seller live subscription whose metadata names a paying seller: a platform plan
    if its tier is the platform's. Only the home seller's live subscriptions can: a seller's
    own customer cannot name another seller (the field is set by billing's checkout in the
    home seller's tenant alone, and checked again here)."""
    return (
        event.platform_for is not None
        and event.platform_for != HOME_SELLER_ID
        and event.tenant == HOME_LIVE
    )


def is_platform_plan(event: SubscriptionEvent) -> bool:
    """A subscription to the home seller's platform tier, paid for by another seller."""
    return names_a_seller(event) and event.tier == PLATFORM_TIER


def plan_status_of(event: SubscriptionEvent) -> PlanStatus:
    """What the subscription is worth to its seller's plan: `none` once it is no platform
    plan (say, moved in Stripe's dashboard to another tier), so it stops counting."""
    return PLAN_OF[event.status] if is_platform_plan(event) else "none"


@dataclass(frozen=True)
class Plan:
    """A seller's plan: its deciding subscription's state (no subscription: `none`)."""

    status: PlanStatus = "none"
    grace_until: datetime | None = None
    subscription_id: str | None = None
    sequence: int = 0
    started_at: datetime | None = None


def best(held: list[asyncpg.Record]) -> Plan:
    """The seller's plan from all its platform-plan subscriptions, each at its own latest
    state: the best status, then the latest grace, then the latest started (then the id, so
    the answer is one whatever the order the rows came in)."""
    if not held:
        return Plan()
    top = max(
        held,
        key=lambda r: (
            RANK[r["status"]],
            r["grace_until"] or NEVER,
            r["started_at"],
            r["subscription_id"],
        ),
    )
    return Plan(
        top["status"],
        top["grace_until"] if top["status"] == "past_due" else None,
        top["subscription_id"],
        top["sequence"],
        top["started_at"],
    )


async def on_subscription(pool: asyncpg.Pool, event: SubscriptionEvent) -> Seller | None:
    """Apply a platform-plan subscription event once; the paying seller's new record
    (published), or None when it is no plan's, a repeat, older than what the subscription
    holds, or changes nothing the seller's plan shows."""
    if not names_a_seller(event) or event.platform_for is None:
        return None
    async with inbox.first_delivery(pool, event, CONSUMER) as conn:
        if conn is None:
            return None
        # The subscription's row first, then its sellers (old and new), in id order: events of
        # one seller's subscriptions apply one at a time, so each sees the others' states.
        held_by = await queries.lock_plan_subscription(conn, event.subscription_id)
        affected = {event.platform_for} | ({held_by} if held_by is not None else set())
        if event.platform_for not in await queries.lock_sellers(conn, list(affected)):
            return None  # no such seller
        saved = await queries.save_plan_subscription(
            conn, event.subscription_id, event.platform_for, event.sequence, event.started_at,
            plan_status_of(event), event.grace_until,
        )  # fmt: skip
        if not saved:
            return None
        changed = [await _decide(conn, seller_id, event) for seller_id in sorted(affected)]
        return next((s for s in changed if s is not None and s.id == event.platform_for), None)


async def _decide(
    conn: asyncpg.Connection, seller_id: UUID, event: SubscriptionEvent
) -> Seller | None:
    """Recompute the seller's plan from its subscriptions; publish and audit a change."""
    plan = best(await queries.plan_subscriptions(conn, seller_id))
    row = await queries.set_plan(
        conn, seller_id, plan.subscription_id, plan.sequence, plan.started_at, plan.status,
        plan.grace_until,
    )  # fmt: skip
    if row is None:
        return None
    seller = Seller.of(row)
    await publish(conn, seller)
    await audit.record(
        conn,
        "seller.plan_changed",
        Tenant(seller.id, "live"),
        plan_status=plan.status,
        subscription=plan.subscription_id,
        sequence=plan.sequence,
        event_subscription=event.subscription_id,
        event_sequence=event.sequence,
    )
    return seller
