"""SQL of the `audit_events` table."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg


async def insert(
    conn: asyncpg.Connection | asyncpg.Pool,
    event_id: UUID,
    action: str,
    *,
    actor_id: UUID | None,
    user_id: UUID | None,
    ip: str | None,
    detail: dict[str, Any],
) -> None:
    await conn.execute(
        """
        INSERT INTO audit_events (id, action, actor_id, user_id, ip, detail)
        VALUES ($1, $2, $3, $4, $5, $6::jsonb)
        """,
        event_id,
        action,
        actor_id,
        user_id,
        ip,
        json.dumps(detail),
    )


async def page(
    conn: asyncpg.Connection | asyncpg.Pool,
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
         WHERE ($1::uuid IS NULL OR user_id = $1 OR actor_id = $1)
           AND ($2::text IS NULL OR action = $2)
           AND ($3::timestamptz IS NULL OR at < $3)
         ORDER BY at DESC, id DESC
         LIMIT $4
        """,
        user_id,
        action,
        before,
        limit,
    )
    return rows
