"""License SQL. Queries take a connection; the caller owns the transaction. Each takes the
tenant whose rows it reads or writes (as its last two parameters, seller and mode)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from tessera.shared.sellers import Tenant

LICENSE_COLUMNS = """
    l.id, l.key_sealed, l.key_hint, l.account_id, l.email, l.product_code, l.policy_code,
    l.order_id, l.seat, l.source, l.status, l.status_reason, l.expires_at, l.created_at,
    l.updated_at, l.seller_id, l.mode,
    (SELECT pol.max_machines FROM policies pol
      WHERE pol.seller_id = l.seller_id AND pol.mode = l.mode AND pol.code = l.policy_code)
        AS max_machines,
    (SELECT p.entitlements FROM products p
      WHERE p.seller_id = l.seller_id AND p.mode = l.mode AND p.code = l.product_code)
        AS entitlements
"""


def tenant_of(row: asyncpg.Record) -> Tenant:
    return Tenant(row["seller_id"], row["mode"])


async def find_policy(conn: asyncpg.Connection, tenant: Tenant, code: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """
        SELECT pol.code, pol.product_code, pol.max_machines, pol.duration_seconds,
               pol.lease_seconds, pol.grace_seconds, p.entitlements
          FROM policies pol
          JOIN products p
            ON p.seller_id = pol.seller_id AND p.mode = pol.mode AND p.code = pol.product_code
         WHERE pol.code = $1 AND pol.seller_id = $2 AND pol.mode = $3
        """,
        code,
        tenant.seller_id,
        tenant.mode,
    )


async def insert_license(
    conn: asyncpg.Connection,
    tenant: Tenant,
    *,
    license_id: UUID,
    key_hash: bytes,
    key_sealed: bytes,
    key_hint: str,
    account_id: UUID,
    email: str,
    product: str,
    policy: str,
    order_id: UUID | None,
    seat: int,
    source: str,
    status: str,
    status_reason: str | None,
    duration_seconds: int | None,
) -> bool:
    """Insert one seat's license; False when that seat of that order already has one."""
    inserted = await conn.fetchval(
        """
        INSERT INTO licenses (id, key_hash, key_sealed, key_hint, account_id, email,
                              product_code, policy_code, order_id, seat, source, status,
                              status_reason, expires_at, seller_id, mode)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,
                CASE WHEN $14::bigint IS NULL THEN NULL
                     ELSE clock_timestamp() + make_interval(secs => $14::bigint) END,
                $15, $16)
        ON CONFLICT (seller_id, mode, order_id, seat) DO NOTHING
        RETURNING true
        """,
        license_id,
        key_hash,
        key_sealed,
        key_hint,
        account_id,
        email,
        product,
        policy,
        order_id,
        seat,
        source,
        status,
        status_reason,
        duration_seconds,
        tenant.seller_id,
        tenant.mode,
    )
    return bool(inserted)


async def lock_order_licenses(
    conn: asyncpg.Connection, tenant: Tenant, order_id: UUID
) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            f"SELECT {LICENSE_COLUMNS} FROM licenses l"  # noqa: S608 (constant columns)
            " WHERE l.order_id = $1 AND l.seller_id = $2 AND l.mode = $3"
            " ORDER BY l.seat FOR UPDATE",
            order_id,
            tenant.seller_id,
            tenant.mode,
        )
    )


async def lock_license(
    conn: asyncpg.Connection, tenant: Tenant, license_id: UUID
) -> asyncpg.Record | None:
    return await find_license(conn, tenant, license_id, for_update=True)


async def find_license(
    conn: asyncpg.Connection, tenant: Tenant, license_id: UUID, *, for_update: bool = False
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {LICENSE_COLUMNS} FROM licenses l"  # noqa: S608 (constant columns)
        " WHERE l.id = $1 AND l.seller_id = $2 AND l.mode = $3"
        + (" FOR UPDATE" if for_update else ""),
        license_id,
        tenant.seller_id,
        tenant.mode,
    )


async def set_status(
    conn: asyncpg.Connection, tenant: Tenant, license_id: UUID, status: str, reason: str | None
) -> None:
    await conn.execute(
        "UPDATE licenses SET status = $2, status_reason = $3, updated_at = clock_timestamp()"
        " WHERE id = $1 AND seller_id = $4 AND mode = $5",
        license_id,
        status,
        reason,
        tenant.seller_id,
        tenant.mode,
    )


async def set_expiry(
    conn: asyncpg.Connection, tenant: Tenant, license_id: UUID, expires_at: datetime | None
) -> None:
    await conn.execute(
        "UPDATE licenses SET expires_at = $2, updated_at = clock_timestamp()"
        " WHERE id = $1 AND seller_id = $3 AND mode = $4",
        license_id,
        expires_at,
        tenant.seller_id,
        tenant.mode,
    )


async def licenses_of_account(
    conn: asyncpg.Connection, tenant: Tenant, account_id: UUID
) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            f"SELECT {LICENSE_COLUMNS} FROM licenses l"  # noqa: S608 (constant columns)
            " WHERE l.account_id = $1 AND l.seller_id = $2 AND l.mode = $3"
            " ORDER BY l.created_at, l.seat",
            account_id,
            tenant.seller_id,
            tenant.mode,
        )
    )


async def search(
    conn: asyncpg.Connection,
    tenant: Tenant,
    *,
    key_hash: bytes | None,
    email: str | None,
    account_id: UUID | None,
    limit: int,
) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            f"""
            SELECT {LICENSE_COLUMNS} FROM licenses l
             WHERE l.seller_id = $5 AND l.mode = $6
               AND ($1::bytea IS NULL OR l.key_hash = $1)
               AND ($2::text IS NULL OR lower(l.email) = lower($2))
               AND ($3::uuid IS NULL OR l.account_id = $3)
             ORDER BY l.created_at DESC, l.seat
             LIMIT $4
            """,  # noqa: S608 (a constant column list, no input)
            key_hash,
            email,
            account_id,
            limit,
            tenant.seller_id,
            tenant.mode,
        )
    )


async def all_licenses(conn: asyncpg.Connection, tenant: Tenant) -> Any:
    """A cursor over every license of the tenant with its activation count (CSV export;
    needs a transaction)."""
    return conn.cursor(
        f"""
        SELECT {LICENSE_COLUMNS},
               (SELECT count(*) FROM activations a
                 WHERE a.seller_id = l.seller_id AND a.mode = l.mode AND a.license_id = l.id)
                   AS activations
          FROM licenses l WHERE l.seller_id = $1 AND l.mode = $2 ORDER BY l.created_at, l.seat
        """,  # noqa: S608 (a constant column list, no input)
        tenant.seller_id,
        tenant.mode,
    )


async def activations_of(
    conn: asyncpg.Connection, tenant: Tenant, license_ids: list[UUID]
) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            """
            SELECT a.id, a.license_id, a.fingerprint_hash, a.machine_name, a.platform,
                   a.app_version, a.created_at,
                   -- only where a policy asks for heartbeats, and a seat only while held
                   CASE WHEN pol.heartbeat_seconds IS NOT NULL THEN a.last_heartbeat_at END
                       AS last_heartbeat_at,
                   CASE WHEN a.seat_until > clock_timestamp() THEN a.seat_until END
                       AS seat_until
              FROM activations a
              JOIN licenses l ON l.id = a.license_id
              JOIN policies pol
                ON pol.seller_id = l.seller_id AND pol.mode = l.mode AND pol.code = l.policy_code
             WHERE a.license_id = ANY($1::uuid[]) AND a.seller_id = $2 AND a.mode = $3
             ORDER BY a.created_at
            """,
            license_ids,
            tenant.seller_id,
            tenant.mode,
        )
    )


async def audit(
    conn: asyncpg.Connection,
    tenant: Tenant,
    *,
    actor_id: UUID | None,
    actor_role: str,
    action: str,
    license_id: UUID | None,
    detail: str,
) -> None:
    await conn.execute(
        "INSERT INTO audit_log (actor_id, actor_role, action, license_id, detail, seller_id, mode)"
        " VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7)",
        actor_id,
        actor_role,
        action,
        license_id,
        detail,
        tenant.seller_id,
        tenant.mode,
    )


async def audit_entries(
    conn: asyncpg.Connection, tenant: Tenant, license_id: UUID | None, limit: int
) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            """
            SELECT id, at, actor_id, actor_role, action, license_id, detail::text AS detail
              FROM audit_log
             WHERE seller_id = $3 AND mode = $4 AND ($1::uuid IS NULL OR license_id = $1)
             ORDER BY id DESC LIMIT $2
            """,
            license_id,
            limit,
            tenant.seller_id,
            tenant.mode,
        )
    )


async def delete_activation_of(
    conn: asyncpg.Connection, tenant: Tenant, license_id: UUID, activation_id: UUID
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "DELETE FROM activations"
        " WHERE id = $2 AND license_id = $1 AND seller_id = $3 AND mode = $4"
        " RETURNING id, fingerprint_hash",
        license_id,
        activation_id,
        tenant.seller_id,
        tenant.mode,
    )


async def delete_activations(
    conn: asyncpg.Connection, tenant: Tenant, license_id: UUID
) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            "DELETE FROM activations WHERE license_id = $1 AND seller_id = $2 AND mode = $3"
            " RETURNING id, fingerprint_hash",
            license_id,
            tenant.seller_id,
            tenant.mode,
        )
    )
