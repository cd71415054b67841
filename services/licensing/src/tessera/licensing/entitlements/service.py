"""Entitlement verbs: billing's subscription events in (inbox-idempotent, the newest
sequence kept), and what a customer is entitled to now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg

from tessera.licensing.entitlements import queries
from tessera.licensing.entitlements.schemas import EntitlementOut
from tessera.shared import inbox
from tessera.shared.events.billing import SubscriptionEnded, SubscriptionEvent, SubscriptionGrants
from tessera.shared.http.problems import NotFound
from tessera.shared.sellers import Tenant

CONSUMER = "licensing.entitlements"
# A subscription in these states has ended: nothing brings it back.
ENDED = frozenset({"canceled", "incomplete_expired"})


async def on_subscription(pool: asyncpg.Pool, event: SubscriptionEvent) -> bool:
    """Record the subscription's state once per event; an older state (a lower sequence)
    than the one held changes nothing, so duplicates and any order end the same."""
    async with inbox.first_delivery(pool, event, CONSUMER) as conn:
        if conn is None:
            return False
        ended = isinstance(event, SubscriptionEnded) or event.status in ENDED
        return await queries.keep_newest(conn, event, ended)


# How long past its period's end an active subscription stays valid without a renewal
# event: Stripe bills a renewal about an hour after the period ends and retries a failed
# webhook for days; past due has its own grace (`grace_until`).
PERIOD_LAPSE = timedelta(days=3)


def is_valid(row: asyncpg.Record, now: datetime) -> bool:
    """Valid while active or trialing (up to its period's end and `PERIOD_LAPSE`), or past
    due until its grace ends; never once ended."""
    if row["ended"]:
        return False
    if row["status"] in ("active", "trialing"):
        # A renewal extends the period; without one (an event lost, the seller's Stripe
        # account disconnected, so its later events are never applied) access lapses.
        period_end: datetime | None = row.get("current_period_end")
        return period_end is None or now < period_end + PERIOD_LAPSE
    grace: datetime | None = row["grace_until"]
    return row["status"] == "past_due" and grace is not None and now < grace


def _out(row: asyncpg.Record, now: datetime) -> EntitlementOut:
    return EntitlementOut(
        product=row["product"], valid=is_valid(row, now), tier=row["tier"],
        grants=SubscriptionGrants.model_validate_json(row["grants"]), interval=row["interval"],
        status=row["status"], current_period_start=row["current_period_start"],
        current_period_end=row["current_period_end"],
        cancel_at_period_end=row["cancel_at_period_end"], trial_end=row["trial_end"],
        grace_until=row["grace_until"], ended=row["ended"],
        subscription_id=row["subscription_id"],
    )  # fmt: skip


async def of_customer(
    pool: asyncpg.Pool, tenant: Tenant, account_id: UUID, *, must_exist: bool
) -> list[EntitlementOut]:
    """One entitlement per product: its valid subscription (the latest started if several),
    else its latest. `must_exist`: a customer the tenant does not have is a 404."""
    now = datetime.now(UTC)
    async with pool.acquire() as conn:
        if must_exist and not await queries.customer_known(conn, tenant, account_id):
            raise NotFound("No such customer.")
        rows = await queries.of_account(conn, tenant, account_id)
    best: dict[str, EntitlementOut] = {}
    for row in rows:  # newest first within a product
        out = _out(row, now)
        held = best.get(out.product)
        if held is None or (out.valid and not held.valid):
            best[out.product] = out
    return list(best.values())
