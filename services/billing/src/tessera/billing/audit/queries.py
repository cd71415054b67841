"""SQL of `audit_log`."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import asyncpg

from tessera.shared.sellers import Tenant


async def record(
    conn: asyncpg.Connection,
    tenant: Tenant,
    actor: str,
    action: str,
    subject: str | None,
    detail: dict[str, Any] | None = None,
    ip: str | None = None,
) -> None:
    await conn.execute(
        "INSERT INTO audit_log (actor, action, subject, detail, ip, seller_id, mode)"
        " VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7)",
        actor,
        action,
        subject,
        json.dumps(detail or {}),
        ip,
        tenant.seller_id,
        tenant.mode,
    )


async def for_subject(
    conn: asyncpg.Connection, tenant: Tenant, subject: str, limit: int = 100
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """
        SELECT actor, action, subject, detail::text AS detail, ip, at FROM audit_log
         WHERE seller_id = $3 AND mode = $4 AND subject = $1 ORDER BY at DESC LIMIT $2
        """,
        subject,
        limit,
        tenant.seller_id,
        tenant.mode,
    )
    return [{**dict(r), "detail": json.loads(r["detail"])} for r in rows]


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
