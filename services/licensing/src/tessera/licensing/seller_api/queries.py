"""Seller API SQL: the customers a tenant knows and the grants made under an idempotency
key (`seller_grants`, licensing_0008)."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from tessera.shared.sellers import Tenant


async def customer_email(conn: asyncpg.Connection, tenant: Tenant, account_id: UUID) -> str | None:
    email: str | None = await conn.fetchval(
        "SELECT email FROM customers WHERE account_id = $1 AND seller_id = $2 AND mode = $3",
        account_id,
        tenant.seller_id,
        tenant.mode,
    )
    return email


async def claim_grant(
    conn: asyncpg.Connection, tenant: Tenant, key: str, request_hash: bytes
) -> bool:
    """True when this call is the first with `key`; a concurrent one waits on the row's
    unique index until the first commits (then sees it) or rolls back (then claims it)."""
    claimed = await conn.fetchval(
        "INSERT INTO seller_grants (seller_id, mode, idempotency_key, request_hash)"
        " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING true",
        tenant.seller_id,
        tenant.mode,
        key,
        request_hash,
    )
    return bool(claimed)


async def earlier_grant(
    conn: asyncpg.Connection, tenant: Tenant, key: str
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT request_hash, license_ids FROM seller_grants"
        " WHERE seller_id = $1 AND mode = $2 AND idempotency_key = $3",
        tenant.seller_id,
        tenant.mode,
        key,
    )


async def record_grant(
    conn: asyncpg.Connection, tenant: Tenant, key: str, license_ids: list[UUID]
) -> None:
    await conn.execute(
        "UPDATE seller_grants SET license_ids = $4"
        " WHERE seller_id = $1 AND mode = $2 AND idempotency_key = $3",
        tenant.seller_id,
        tenant.mode,
        key,
        license_ids,
    )
