"""SQL of the `accounts` table."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from tessera.shared.sellers import Tenant


async def insert_if_absent(
    conn: asyncpg.Connection, tenant: Tenant, account_id: UUID, email: str, source: str
) -> bool:
    """Insert the account unless the email already has one at this tenant. True when
    inserted."""
    # No conflict target: two racing inserts of one address carry one derived id, so they
    # may collide on the primary key before the address's index, and either means "exists".
    inserted = await conn.fetchval(
        """
        INSERT INTO accounts (id, email, source, seller_id, mode) VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT DO NOTHING
        RETURNING true
        """,
        account_id,
        email,
        source,
        tenant.seller_id,
        tenant.mode,
    )
    return bool(inserted)


async def find_id_by_email(conn: asyncpg.Connection, tenant: Tenant, email: str) -> UUID | None:
    found: UUID | None = await conn.fetchval(
        "SELECT id FROM accounts WHERE seller_id = $2 AND mode = $3 AND email = $1",
        email,
        tenant.seller_id,
        tenant.mode,
    )
    return found


async def get(conn: asyncpg.Connection, tenant: Tenant, account_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT id, email, source, created_at FROM accounts"
        " WHERE id = $1 AND seller_id = $2 AND mode = $3",
        account_id,
        tenant.seller_id,
        tenant.mode,
    )


async def search(
    conn: asyncpg.Connection, tenant: Tenant, query: str | None, limit: int, offset: int
) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            """
        SELECT a.id, a.email, a.source, a.created_at,
               (SELECT count(*) FROM orders o
                 WHERE o.account_id = a.id AND o.seller_id = $4 AND o.mode = $5) AS orders
          FROM accounts a
         WHERE a.seller_id = $4 AND a.mode = $5
           AND ($1::text IS NULL OR a.email LIKE '%' || lower($1) || '%' OR a.id::text = $1
            OR EXISTS (SELECT 1 FROM orders o
                        WHERE o.account_id = a.id AND o.seller_id = $4 AND o.mode = $5
                          AND (o.id::text = $1 OR o.customer_id = $1 OR o.payment_intent_id = $1
                               OR o.checkout_session_id = $1 OR o.charge_id = $1)))
         ORDER BY a.created_at DESC
         LIMIT $2 OFFSET $3
        """,
            query,
            limit,
            offset,
            tenant.seller_id,
            tenant.mode,
        )
    )
