"""SQL of `audit_log`."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import asyncpg


async def record(
    conn: asyncpg.Connection,
    actor: str,
    action: str,
    subject: str | None,
    detail: dict[str, Any] | None = None,
    ip: str | None = None,
) -> None:
    await conn.execute(
        "INSERT INTO audit_log (actor, action, subject, detail, ip) VALUES ($1, $2, $3, $4::jsonb, $5)",
        actor,
        action,
        subject,
        json.dumps(detail or {}),
        ip,
    )


async def for_subject(
    conn: asyncpg.Connection, subject: str, limit: int = 100
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """
        SELECT actor, action, subject, detail::text AS detail, ip, at FROM audit_log
         WHERE subject = $1 ORDER BY at DESC LIMIT $2
        """,
        subject,
        limit,
    )
    return [{**dict(r), "detail": json.loads(r["detail"])} for r in rows]


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
