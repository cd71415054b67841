"""Read-only SQL over the subscription log, prices, orders and refunds, for revenue."""

from __future__ import annotations

from datetime import datetime

import asyncpg
import orjson

from tessera.billing.subscriptions.state import Logged
from tessera.shared.sellers import Tenant


async def subscription_logs(
    conn: asyncpg.Connection, tenant: Tenant, until: int
) -> dict[str, tuple[str, list[Logged]]]:
    """Per subscription: its customer key and every event logged about it up to `until`."""
    rows = await conn.fetch(
        """
        SELECT e.subscription_id, e.event_id, e.type, e.created, e.snapshot, e.previous,
               coalesce(s.account_id::text, s.stripe_customer_id, s.id) AS customer
          FROM subscription_events e
          JOIN subscriptions s
            ON s.seller_id = e.seller_id AND s.mode = e.mode AND s.id = e.subscription_id
         WHERE e.seller_id = $1 AND e.mode = $2 AND e.created < $3
        """,
        tenant.seller_id,
        tenant.mode,
        until,
    )
    logs: dict[str, tuple[str, list[Logged]]] = {}
    for r in rows:
        event = Logged(
            r["event_id"],
            r["type"],
            r["created"],
            orjson.loads(r["snapshot"]),
            orjson.loads(r["previous"]) if r["previous"] is not None else None,
        )
        logs.setdefault(r["subscription_id"], (r["customer"], []))[1].append(event)
    return logs


async def tiers_by_stripe_price(conn: asyncpg.Connection, tenant: Tenant) -> dict[str, str]:
    rows = await conn.fetch(
        "SELECT stripe_price_id, tier FROM prices WHERE seller_id = $1 AND mode = $2"
        " AND stripe_price_id IS NOT NULL AND tier IS NOT NULL",
        tenant.seller_id,
        tenant.mode,
    )
    return {r["stripe_price_id"]: r["tier"] for r in rows}


async def paid_orders(
    conn: asyncpg.Connection, tenant: Tenant, start: datetime, end: datetime
) -> list[asyncpg.Record]:
    """Per currency: one-time purchases paid in [start, end), in minor units."""
    return list(
        await conn.fetch(
            """
            SELECT currency, sum(amount_total)::bigint AS amount, count(*) AS orders
              FROM orders
             WHERE seller_id = $1 AND mode = $2 AND source = 'purchase'
               AND paid_at >= $3 AND paid_at < $4
             GROUP BY currency
            """,
            tenant.seller_id,
            tenant.mode,
            start,
            end,
        )
    )


async def refunds(
    conn: asyncpg.Connection, tenant: Tenant, start: datetime, end: datetime
) -> list[asyncpg.Record]:
    """Per currency: what was refunded on orders in [start, end). A refund adjustment carries
    the order's refunded total so far, so the period's refunds are, per order, the total at
    the end less the total at the start."""
    return list(
        await conn.fetch(
            """
            SELECT o.currency, sum(a.upto_end - a.upto_start)::bigint AS amount
              FROM (SELECT order_id,
                           coalesce(max(amount) FILTER (WHERE created_at < $4), 0) AS upto_end,
                           coalesce(max(amount) FILTER (WHERE created_at < $3), 0) AS upto_start
                      FROM order_adjustments
                     WHERE seller_id = $1 AND mode = $2 AND kind = 'refund'
                     GROUP BY order_id) a
              JOIN orders o ON o.id = a.order_id AND o.seller_id = $1 AND o.mode = $2
             GROUP BY o.currency
            """,
            tenant.seller_id,
            tenant.mode,
            start,
            end,
        )
    )
