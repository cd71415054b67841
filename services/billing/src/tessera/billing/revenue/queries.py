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


async def invoice_refunds(
    conn: asyncpg.Connection, tenant: Tenant, start: datetime, end: datetime
) -> list[asyncpg.Record]:
    """Per subscription invoice refunded in [start, end): its currency and what was
    refunded in the period (each `charge.refunded` carries the total so far, by Stripe's
    time, so it is the total at the end less the one at the start)."""
    return list(
        await conn.fetch(
            """
            SELECT p.source, p.currency, (a.upto_end - a.upto_start)::bigint AS amount
              FROM (SELECT source,
                           coalesce(max(amount_refunded) FILTER (WHERE created < $4), 0)
                               AS upto_end,
                           coalesce(max(amount_refunded) FILTER (WHERE created < $3), 0)
                               AS upto_start
                      FROM payment_refunds
                     WHERE seller_id = $1 AND mode = $2
                     GROUP BY source) a
              JOIN payments p ON p.seller_id = $1 AND p.mode = $2 AND p.source = a.source
             WHERE a.upto_end > a.upto_start
            """,
            tenant.seller_id,
            tenant.mode,
            start,
            end,
        )
    )


async def order_payments(
    conn: asyncpg.Connection, tenant: Tenant, start: datetime, end: datetime
) -> list[asyncpg.Record]:
    """The one-time orders paid or refunded in [start, end): currency and payment (its
    payment intent, the key of its fees; the order's id when it has none)."""
    return list(
        await conn.fetch(
            """
            SELECT DISTINCT o.currency, coalesce(o.payment_intent_id, o.id::text) AS source
              FROM orders o
             WHERE o.seller_id = $1 AND o.mode = $2 AND o.source = 'purchase'
               AND o.amount_total > 0
               AND ((o.paid_at >= $3 AND o.paid_at < $4)
                    OR EXISTS (SELECT 1 FROM order_adjustments a
                                WHERE a.seller_id = $1 AND a.mode = $2 AND a.order_id = o.id
                                  AND a.kind = 'refund'
                                  AND a.created_at >= $3 AND a.created_at < $4))
            """,
            tenant.seller_id,
            tenant.mode,
            start,
            end,
        )
    )


async def fees(
    conn: asyncpg.Connection, tenant: Tenant, start: datetime, end: datetime
) -> list[asyncpg.Record]:
    """Per currency: Stripe's fees of the balance transactions (the payments' charges and
    refunds) made in [start, end). One settled in another currency than its payment's (a
    conversion) is left out here and counted as a fee not known (`fee_known`)."""
    return list(
        await conn.fetch(
            """
            SELECT p.currency, sum(b.fee)::bigint AS fees
              FROM payment_balance b
              JOIN payments p ON p.seller_id = b.seller_id AND p.mode = b.mode
                             AND p.source = b.source
             WHERE b.seller_id = $1 AND b.mode = $2 AND b.created >= $3 AND b.created < $4
               AND b.currency = p.currency
             GROUP BY p.currency
            """,
            tenant.seller_id,
            tenant.mode,
            start,
            end,
        )
    )


async def fee_known(conn: asyncpg.Connection, tenant: Tenant, sources: list[str]) -> set[str]:
    """Which of these payments have every fee known: all their balance transactions are
    fetched, in the payment's own currency."""
    rows = await conn.fetch(
        """
        SELECT p.source FROM payments p
         WHERE p.seller_id = $1 AND p.mode = $2 AND p.source = ANY($3::text[])
           AND p.state = 'known'
           AND NOT EXISTS (SELECT 1 FROM payment_balance b
                            WHERE b.seller_id = $1 AND b.mode = $2 AND b.source = p.source
                              AND b.currency <> p.currency)
        """,
        tenant.seller_id,
        tenant.mode,
        sources,
    )
    return {r["source"] for r in rows}


async def held_refunds(
    conn: asyncpg.Connection, tenant: Tenant, start: datetime, end: datetime
) -> dict[str, int]:
    """Per currency: `charge.refunded` events Stripe made in [start, end) that are held
    because billing cannot place their charge yet (an order that has not arrived, or a
    subscription invoice whose charge the fee worker has not learnt): not counted yet.
    Events of Stripe accounts no seller has connected yet are held under the home seller
    too (`awaiting-connection`): they are no refund of its own."""
    rows = await conn.fetch(
        """
        SELECT lower(payload->'data'->'object'->>'currency') AS currency,
               count(DISTINCT hold_key) AS held
          FROM stripe_events
         WHERE seller_id = $1 AND mode = $2 AND status = 'held' AND type = 'charge.refunded'
           AND hold_key IS DISTINCT FROM 'awaiting-connection'
           AND stripe_created >= $3 AND stripe_created < $4
         GROUP BY 1
        """,
        tenant.seller_id,
        tenant.mode,
        start,
        end,
    )
    return {r["currency"]: int(r["held"]) for r in rows if r["currency"]}
