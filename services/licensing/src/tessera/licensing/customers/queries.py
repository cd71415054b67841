"""SQL of the `customers` table: the accounts licensing knows, per tenant."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from tessera.shared.sellers import Tenant


async def remember(conn: asyncpg.Connection, tenant: Tenant, account_id: UUID, email: str) -> bool:
    """Insert the account unless the tenant knows it already. True when inserted."""
    inserted = await conn.fetchval(
        "INSERT INTO customers (account_id, email, seller_id, mode) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT DO NOTHING RETURNING true",
        account_id,
        email,
        tenant.seller_id,
        tenant.mode,
    )
    return bool(inserted)


async def accounts_of_email(conn: asyncpg.Connection, tenant: Tenant, email: str) -> list[UUID]:
    """The tenant's accounts with this address (one, but for accounts made before account
    ids were derived)."""
    rows = await conn.fetch(
        "SELECT account_id FROM customers"
        " WHERE seller_id = $1 AND mode = $2 AND lower(email) = lower($3)",
        tenant.seller_id,
        tenant.mode,
        email,
    )
    return [r["account_id"] for r in rows]
