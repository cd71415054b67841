"""SQL of the `endpoints` table. Every read and write names the tenant."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

from tessera.shared.sellers import Tenant

COLUMNS = """id, url, event_types, description, enabled, disabled_reason, created_at, updated_at,
    CASE WHEN previous_secret_until > clock_timestamp() THEN previous_secret_until END
        AS previous_secret_expires_at"""


async def insert(
    conn: asyncpg.Connection,
    tenant: Tenant,
    endpoint_id: UUID,
    url: str,
    event_types: list[str] | None,
    description: str,
    enabled: bool,
    secret_sealed: bytes,
) -> asyncpg.Record:
    row: asyncpg.Record = await conn.fetchrow(
        f"""
        INSERT INTO endpoints (id, seller_id, mode, url, event_types, description, enabled,
                               disabled_reason, secret_sealed)
        VALUES ($1, $2, $3, $4, $5, $6, $7, CASE WHEN $7 THEN NULL ELSE 'seller' END, $8)
        RETURNING {COLUMNS}
        """,  # noqa: S608 - constant SQL; values are parameters
        endpoint_id, tenant.seller_id, tenant.mode, url, event_types, description, enabled,
        secret_sealed,
    )  # fmt: skip
    return row


async def list_of(conn: asyncpg.Connection, tenant: Tenant) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        f"SELECT {COLUMNS} FROM endpoints WHERE seller_id = $1 AND mode = $2 ORDER BY created_at",  # noqa: S608 - constant columns
        tenant.seller_id,
        tenant.mode,
    )
    return rows


async def one(conn: asyncpg.Connection, tenant: Tenant, endpoint_id: UUID) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        f"SELECT {COLUMNS} FROM endpoints WHERE id = $1 AND seller_id = $2 AND mode = $3",  # noqa: S608 - constant columns
        endpoint_id,
        tenant.seller_id,
        tenant.mode,
    )
    return row


async def lock(
    conn: asyncpg.Connection, tenant: Tenant, endpoint_id: UUID
) -> asyncpg.Record | None:
    """The endpoint's row, locked for the transaction (a change reads, then writes)."""
    row: asyncpg.Record | None = await conn.fetchrow(
        """
        SELECT url, event_types, description, enabled, disabled_reason
        FROM endpoints WHERE id = $1 AND seller_id = $2 AND mode = $3 FOR UPDATE
        """,
        endpoint_id,
        tenant.seller_id,
        tenant.mode,
    )
    return row


async def save(
    conn: asyncpg.Connection,
    endpoint_id: UUID,
    url: str,
    event_types: list[str] | None,
    description: str,
    enabled: bool,
    disabled_reason: str | None,
) -> asyncpg.Record:
    """Write a locked endpoint's settings; turning it on forgets how long it was failing."""
    row: asyncpg.Record = await conn.fetchrow(
        f"""
        UPDATE endpoints
        SET url = $2, event_types = $3, description = $4, enabled = $5, disabled_reason = $6,
            failing_since = CASE WHEN $5 AND NOT enabled THEN NULL ELSE failing_since END,
            updated_at = clock_timestamp()
        WHERE id = $1
        RETURNING {COLUMNS}
        """,  # noqa: S608 - constant SQL; values are parameters
        endpoint_id, url, event_types, description, enabled, disabled_reason,
    )  # fmt: skip
    return row


async def rotate(
    conn: asyncpg.Connection, endpoint_id: UUID, sealed: bytes, previous_until: datetime | None
) -> datetime | None:
    """The new secret signs from now; the old one too until `previous_until` (None: not)."""
    until: datetime | None = await conn.fetchval(
        """
        UPDATE endpoints
        SET previous_secret_sealed = CASE WHEN $3::timestamptz IS NULL THEN NULL
                                          ELSE secret_sealed END,
            previous_secret_until = $3, secret_sealed = $2, updated_at = clock_timestamp()
        WHERE id = $1
        RETURNING previous_secret_until
        """,
        endpoint_id,
        sealed,
        previous_until,
    )
    return until


async def delete(conn: asyncpg.Connection, tenant: Tenant, endpoint_id: UUID) -> bool:
    deleted = await conn.fetchval(
        "DELETE FROM endpoints WHERE id = $1 AND seller_id = $2 AND mode = $3 RETURNING true",
        endpoint_id,
        tenant.seller_id,
        tenant.mode,
    )
    return bool(deleted)
