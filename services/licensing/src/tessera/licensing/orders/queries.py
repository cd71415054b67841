"""Order-fact SQL. Every statement upserts the order row first, which locks it: events about
one order are applied one at a time even when consumers run them in parallel. Each takes
the tenant of the event it applies (as its last two parameters, seller and mode)."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from tessera.shared.sellers import Tenant


async def record_paid(
    conn: asyncpg.Connection, tenant: Tenant, order_id: UUID, account_id: UUID
) -> asyncpg.Record:
    row = await conn.fetchrow(
        """
        INSERT INTO orders (order_id, account_id, paid_at, seller_id, mode)
        VALUES ($1, $2, clock_timestamp(), $3, $4)
        ON CONFLICT (seller_id, mode, order_id) DO UPDATE
           SET paid_at = coalesce(orders.paid_at, excluded.paid_at),
               updated_at = clock_timestamp()
        RETURNING order_id, refunded_at
        """,
        order_id,
        account_id,
        tenant.seller_id,
        tenant.mode,
    )
    assert row is not None
    return row


async def record_refunded(
    conn: asyncpg.Connection, tenant: Tenant, order_id: UUID, account_id: UUID
) -> None:
    await conn.execute(
        """
        INSERT INTO orders (order_id, account_id, refunded_at, seller_id, mode)
        VALUES ($1, $2, clock_timestamp(), $3, $4)
        ON CONFLICT (seller_id, mode, order_id) DO UPDATE
           SET refunded_at = coalesce(orders.refunded_at, excluded.refunded_at),
               updated_at = clock_timestamp()
        """,
        order_id,
        account_id,
        tenant.seller_id,
        tenant.mode,
    )


async def touch(conn: asyncpg.Connection, tenant: Tenant, order_id: UUID, account_id: UUID) -> None:
    await conn.execute(
        """
        INSERT INTO orders (order_id, account_id, seller_id, mode) VALUES ($1, $2, $3, $4)
        ON CONFLICT (seller_id, mode, order_id) DO UPDATE SET updated_at = clock_timestamp()
        """,
        order_id,
        account_id,
        tenant.seller_id,
        tenant.mode,
    )


async def record_dispute_opened(
    conn: asyncpg.Connection, tenant: Tenant, order_id: UUID, dispute_id: str
) -> None:
    await conn.execute(
        """
        INSERT INTO order_disputes (order_id, dispute_id, opened_at, seller_id, mode)
        VALUES ($1, $2, clock_timestamp(), $3, $4)
        ON CONFLICT (seller_id, mode, order_id, dispute_id) DO UPDATE
           SET opened_at = coalesce(order_disputes.opened_at, excluded.opened_at)
        """,
        order_id,
        dispute_id,
        tenant.seller_id,
        tenant.mode,
    )


async def record_dispute_closed(
    conn: asyncpg.Connection, tenant: Tenant, order_id: UUID, dispute_id: str, outcome: str
) -> None:
    await conn.execute(
        """
        INSERT INTO order_disputes (order_id, dispute_id, outcome, seller_id, mode)
        VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (seller_id, mode, order_id, dispute_id) DO UPDATE
           SET outcome = excluded.outcome
        """,
        order_id,
        dispute_id,
        outcome,
        tenant.seller_id,
        tenant.mode,
    )


async def facts(conn: asyncpg.Connection, tenant: Tenant, order_id: UUID) -> asyncpg.Record:
    row = await conn.fetchrow(
        """
        SELECT o.refunded_at IS NOT NULL AS refunded,
               EXISTS (SELECT 1 FROM order_disputes d
                        WHERE d.seller_id = o.seller_id AND d.mode = o.mode
                          AND d.order_id = o.order_id AND d.outcome = 'lost') AS lost,
               EXISTS (SELECT 1 FROM order_disputes d
                        WHERE d.seller_id = o.seller_id AND d.mode = o.mode
                          AND d.order_id = o.order_id AND d.outcome IS NULL) AS open_dispute
          FROM orders o WHERE o.order_id = $1 AND o.seller_id = $2 AND o.mode = $3
        """,
        order_id,
        tenant.seller_id,
        tenant.mode,
    )
    assert row is not None
    return row


async def hold(
    conn: asyncpg.Connection, tenant: Tenant, order_id: UUID, reason: str, event_json: str
) -> None:
    await conn.execute(
        "UPDATE orders SET held_reason = $2, held_event = $3::jsonb, updated_at = clock_timestamp()"
        " WHERE order_id = $1 AND seller_id = $4 AND mode = $5",
        order_id,
        reason,
        event_json,
        tenant.seller_id,
        tenant.mode,
    )


async def release(conn: asyncpg.Connection, tenant: Tenant, order_id: UUID) -> None:
    await conn.execute(
        "UPDATE orders SET held_reason = NULL, held_event = NULL, updated_at = clock_timestamp()"
        " WHERE order_id = $1 AND seller_id = $2 AND mode = $3",
        order_id,
        tenant.seller_id,
        tenant.mode,
    )


async def held_orders(conn: asyncpg.Connection, tenant: Tenant) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            "SELECT order_id, held_reason, held_event::text AS held_event, updated_at"
            " FROM orders WHERE seller_id = $1 AND mode = $2 AND held_reason IS NOT NULL"
            " ORDER BY updated_at",
            tenant.seller_id,
            tenant.mode,
        )
    )
