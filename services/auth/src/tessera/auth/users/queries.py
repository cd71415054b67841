"""SQL of the `users` and `known_devices` tables. A user belongs to one seller and one mode
(its tenant); every lookup by address names the tenant."""

from __future__ import annotations

import json
from typing import Literal
from uuid import UUID

import asyncpg

from tessera.shared.sellers import Tenant

USER_COLUMNS = (
    "id, account_id, email, role, disabled_at, created_at, seller_id, mode, name, metadata"
)


async def insert_if_absent(
    conn: asyncpg.Connection,
    tenant: Tenant,
    user_id: UUID,
    account_id: UUID,
    email: str,
    role: str = "customer",
) -> bool:
    inserted = await conn.fetchval(
        """
        INSERT INTO users (id, account_id, email, role, seller_id, mode)
        VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT DO NOTHING
        RETURNING true
        """,
        user_id,
        account_id,
        email,
        role,
        tenant.seller_id,
        tenant.mode,
    )
    return bool(inserted)


async def find_by_id(
    conn: asyncpg.Connection | asyncpg.Pool, user_id: UUID
) -> asyncpg.Record | None:
    # By id alone: a user id comes only from what auth itself holds (a session, a link, a
    # grant), each bound to that user, so it names its tenant.
    row: asyncpg.Record | None = await conn.fetchrow(
        f"SELECT {USER_COLUMNS} FROM users WHERE id = $1",  # noqa: S608 - constant columns
        user_id,
    )
    return row


async def find_in_tenant(
    conn: asyncpg.Connection | asyncpg.Pool,
    tenant: Tenant,
    key: UUID,
    *,
    by: Literal["id", "account_id"] = "id",
    for_update: bool = False,
) -> asyncpg.Record | None:
    """The tenant's user by its id, or by its account id (the customer API's public id).
    Both are unique; the tenant's condition makes another tenant's user absent."""
    lock = " FOR UPDATE" if for_update else ""
    row: asyncpg.Record | None = await conn.fetchrow(
        f"SELECT {USER_COLUMNS} FROM users"  # noqa: S608 - constant columns and column name
        f" WHERE {by} = $1 AND seller_id = $2 AND mode = $3{lock}",
        key,
        tenant.seller_id,
        tenant.mode,
    )
    return row


async def find_by_email(
    conn: asyncpg.Connection | asyncpg.Pool,
    tenant: Tenant,
    email: str,
    *,
    for_update: bool = False,
) -> asyncpg.Record | None:
    lock = " FOR UPDATE" if for_update else ""
    row: asyncpg.Record | None = await conn.fetchrow(
        f"""
        SELECT {USER_COLUMNS} FROM users
         WHERE seller_id = $1 AND mode = $2 AND lower(email) = lower($3){lock}
        """,  # noqa: S608 - constant columns
        tenant.seller_id,
        tenant.mode,
        email,
    )
    return row


async def set_role(conn: asyncpg.Connection, user_id: UUID, role: str) -> None:
    await conn.execute("UPDATE users SET role = $2 WHERE id = $1", user_id, role)


async def promote_emails(
    conn: asyncpg.Connection, tenant: Tenant, emails: list[str]
) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        """
        UPDATE users SET role = 'admin'
         WHERE seller_id = $2 AND mode = $3
           AND lower(email) = ANY($1::text[]) AND role <> 'admin'
        RETURNING id, email
        """,
        [e.lower() for e in emails],
        tenant.seller_id,
        tenant.mode,
    )
    return rows


async def disable(conn: asyncpg.Connection, user_id: UUID) -> bool:
    changed = await conn.fetchval(
        """
        UPDATE users SET disabled_at = clock_timestamp()
         WHERE id = $1 AND disabled_at IS NULL
        RETURNING true
        """,
        user_id,
    )
    return bool(changed)


async def enable(conn: asyncpg.Connection, user_id: UUID) -> bool:
    changed = await conn.fetchval(
        "UPDATE users SET disabled_at = NULL WHERE id = $1 AND disabled_at IS NOT NULL RETURNING true",
        user_id,
    )
    return bool(changed)


async def page(
    conn: asyncpg.Connection | asyncpg.Pool,
    tenant: Tenant,
    *,
    email: str | None,
    limit: int,
    offset: int,
) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        f"""
        SELECT {USER_COLUMNS} FROM users
         WHERE seller_id = $4 AND mode = $5
           AND ($1::text IS NULL OR lower(email) LIKE '%' || lower($1) || '%')
         ORDER BY created_at DESC, id
         LIMIT $2 OFFSET $3
        """,  # noqa: S608 - constant columns; values are parameters
        email,
        limit,
        offset,
        tenant.seller_id,
        tenant.mode,
    )
    return rows


async def remember_device(
    conn: asyncpg.Connection, tenant: Tenant, user_id: UUID, device_hash: str
) -> str:
    """Record a sign-in from a device: 'first' (no device known before), 'new' or 'known'."""
    known = await conn.fetchval("SELECT count(*) FROM known_devices WHERE user_id = $1", user_id)
    inserted = await conn.fetchval(
        """
        INSERT INTO known_devices (user_id, device_hash, seller_id, mode) VALUES ($1, $2, $3, $4)
        ON CONFLICT (user_id, device_hash) DO UPDATE SET last_seen = clock_timestamp()
        RETURNING xmax = 0
        """,
        user_id,
        device_hash,
        tenant.seller_id,
        tenant.mode,
    )
    if not inserted:
        return "known"
    return "first" if known == 0 else "new"


async def insert_customer(
    conn: asyncpg.Connection,
    tenant: Tenant,
    user_id: UUID,
    account_id: UUID,
    email: str,
    name: str | None,
    metadata: dict[str, str],
) -> asyncpg.Record | None:
    """The new customer's row, or None when the address already has one in the tenant."""
    row: asyncpg.Record | None = await conn.fetchrow(
        f"""
        INSERT INTO users (id, account_id, email, role, seller_id, mode, name, metadata)
        VALUES ($1, $2, $3, 'customer', $4, $5, $6, $7::jsonb)
        ON CONFLICT DO NOTHING
        RETURNING {USER_COLUMNS}
        """,  # noqa: S608 - constant columns
        user_id, account_id, email, tenant.seller_id, tenant.mode, name, json.dumps(metadata),
    )  # fmt: skip
    return row


async def customers_after(
    conn: asyncpg.Connection | asyncpg.Pool, tenant: Tenant, after: UUID | None, limit: int
) -> list[asyncpg.Record]:
    """The tenant's customers (never an admin), oldest first by (created_at, id), after the
    customer whose account is `after`
    (keyset pagination: a page stays right while customers are added). An `after` not in
    the tenant gives none."""
    rows: list[asyncpg.Record] = await conn.fetch(
        f"""
        SELECT {USER_COLUMNS} FROM users u
         WHERE u.seller_id = $1 AND u.mode = $2 AND u.role = 'customer'
           AND ($3::uuid IS NULL OR (u.created_at, u.id) > (
                SELECT c.created_at, c.id FROM users c
                 WHERE c.account_id = $3 AND c.seller_id = $1 AND c.mode = $2))
         ORDER BY u.created_at, u.id
         LIMIT $4
        """,  # noqa: S608 - constant columns; values are parameters
        tenant.seller_id, tenant.mode, after, limit,
    )  # fmt: skip
    return rows


async def update_customer(
    conn: asyncpg.Connection,
    user_id: UUID,
    name: str | None,
    metadata: dict[str, str] | None,
) -> None:
    # None leaves a field as it is (the service checked the row's tenant under a lock).
    await conn.execute(
        """UPDATE users SET name = coalesce($2, name),
                            metadata = coalesce($3::jsonb, metadata)
            WHERE id = $1""",
        user_id,
        name,
        None if metadata is None else json.dumps(metadata),
    )
