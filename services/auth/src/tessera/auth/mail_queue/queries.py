"""SQL of the `email_outbox` table."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

import asyncpg

from tessera.shared.events.envelope import new_event_id
from tessera.shared.sellers import Tenant

LEASE_SECONDS = 120


async def enqueue(
    conn: asyncpg.Connection | asyncpg.Pool,
    tenant: Tenant,
    kind: str,
    recipient: str,
    payload: dict[str, Any],
) -> UUID:
    """Queue a mail of `tenant` (whose customer it goes to, and whose name it carries)."""
    mail_id = new_event_id()
    await conn.execute(
        """
        INSERT INTO email_outbox (id, kind, recipient, payload, seller_id, mode)
        VALUES ($1, $2, $3, $4::jsonb, $5, $6)
        """,
        mail_id,
        kind,
        recipient,
        json.dumps(payload),
        tenant.seller_id,
        tenant.mode,
    )
    return mail_id


async def claim_due(conn: asyncpg.Connection | asyncpg.Pool, limit: int) -> list[asyncpg.Record]:
    # A lease, not a held transaction: the SMTP conversation happens outside any
    # transaction, and a replica that dies mid-send leaves the row to be retried after it.
    rows: list[asyncpg.Record] = await conn.fetch(
        """
        UPDATE email_outbox SET locked_until = clock_timestamp() + make_interval(secs => $2)
         WHERE id IN (
             SELECT id FROM email_outbox
              WHERE status = 'pending' AND next_attempt_at <= clock_timestamp()
                AND (locked_until IS NULL OR locked_until < clock_timestamp())
              ORDER BY next_attempt_at
              LIMIT $1
                FOR UPDATE SKIP LOCKED)
        RETURNING id, kind, recipient, payload::text AS payload, attempts, seller_id, mode
        """,
        limit,
        float(LEASE_SECONDS),
    )
    return rows


async def mark_sent(conn: asyncpg.Connection | asyncpg.Pool, mail_id: UUID) -> None:
    await conn.execute(
        """
        UPDATE email_outbox
           SET status = 'sent', sent_at = clock_timestamp(), attempts = attempts + 1,
               locked_until = NULL
         WHERE id = $1
        """,
        mail_id,
    )


async def mark_final(
    conn: asyncpg.Connection | asyncpg.Pool, mail_id: UUID, status: str, reason: str
) -> None:
    await conn.execute(
        "UPDATE email_outbox SET status = $2, last_error = $3, locked_until = NULL WHERE id = $1",
        mail_id,
        status,
        reason[:500],
    )


async def mark_failed(
    conn: asyncpg.Connection | asyncpg.Pool, mail_id: UUID, error: str, delay: float
) -> None:
    await conn.execute(
        """
        UPDATE email_outbox
           SET attempts = attempts + 1, last_error = $2, locked_until = NULL,
               next_attempt_at = clock_timestamp() + make_interval(secs => $3)
         WHERE id = $1
        """,
        mail_id,
        error[:500],
        delay,
    )
