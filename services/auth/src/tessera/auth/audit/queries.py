"""SQL of the `audit_events` table."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from tessera.shared.sellers import Tenant


async def insert(
    conn: asyncpg.Connection | asyncpg.Pool,
    event_id: UUID,
    action: str,
    tenant: Tenant,
    *,
    actor_id: UUID | None,
    user_id: UUID | None,
    ip: str | None,
    detail: dict[str, Any],
) -> None:
    await conn.execute(
        """
        INSERT INTO audit_events (id, action, actor_id, user_id, ip, detail, seller_id, mode)
        VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8)
        """,
        event_id,
        action,
        actor_id,
        user_id,
        ip,
        json.dumps(detail),
        tenant.seller_id,
        tenant.mode,
    )


async def page(
    conn: asyncpg.Connection | asyncpg.Pool,
    tenant: Tenant,
    *,
    user_id: UUID | None,
    action: str | None,
    before: datetime | None,
    limit: int,
) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        """
        SELECT id, at, action, actor_id, user_id, ip, detail::text AS detail
          FROM audit_events
         WHERE seller_id = $5 AND mode = $6
           AND ($1::uuid IS NULL OR user_id = $1 OR actor_id = $1)
           AND ($2::text IS NULL OR action = $2)
           AND ($3::timestamptz IS NULL OR at < $3)
         ORDER BY at DESC, id DESC
         LIMIT $4
        """,
        user_id,
        action,
        before,
        limit,
        tenant.seller_id,
        tenant.mode,
    )
    return rows
