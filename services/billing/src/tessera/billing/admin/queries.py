"""Reporting SQL over orders and disputes (read-only)."""

from __future__ import annotations

from datetime import date

import asyncpg

from tessera.shared.sellers import Tenant


async def revenue_by_day_and_sku(
    conn: asyncpg.Connection, tenant: Tenant, start: date, end: date
) -> list[asyncpg.Record]:
    """Per paid day and SKU: gross (purchases), refunds, disputes lost, net, in minor units."""
    return list(
        await conn.fetch(
            """
        SELECT o.paid_at::date AS day, o.sku, o.currency,
               count(*) AS orders,
               sum(o.amount_total) AS gross,
               sum(o.amount_refunded) AS refunds,
               COALESCE(sum(d.lost), 0) AS disputes_lost
          FROM orders o
          LEFT JOIN LATERAL (
               SELECT sum(amount) AS lost FROM disputes
                WHERE seller_id = $3 AND mode = $4 AND order_id = o.id AND status = 'lost'
          ) d ON true
         WHERE o.seller_id = $3 AND o.mode = $4
           AND o.paid_at IS NOT NULL AND o.source = 'purchase'
           AND o.paid_at >= $1 AND o.paid_at < ($2::date + 1)
         GROUP BY 1, 2, 3
         ORDER BY 1, 2
        """,
            start,
            end,
            tenant.seller_id,
            tenant.mode,
        )
    )


async def all_orders(conn: asyncpg.Connection, tenant: Tenant) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            """
        SELECT id, account_id, email, sku, quantity, amount_total, amount_refunded, currency,
               status, dispute_status, source, checkout_session_id, payment_intent_id, charge_id,
               customer_id, created_at, paid_at
          FROM orders WHERE seller_id = $1 AND mode = $2 ORDER BY created_at
        """,
            tenant.seller_id,
            tenant.mode,
        )
    )


async def all_accounts(conn: asyncpg.Connection, tenant: Tenant) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            """
        SELECT a.id, a.email, a.source, a.created_at,
               (SELECT count(*) FROM orders o
                 WHERE o.account_id = a.id AND o.seller_id = $1 AND o.mode = $2) AS orders
          FROM accounts a WHERE a.seller_id = $1 AND a.mode = $2 ORDER BY a.created_at
        """,
            tenant.seller_id,
            tenant.mode,
        )
    )
