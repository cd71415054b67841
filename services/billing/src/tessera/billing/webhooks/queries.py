"""SQL of `stripe_events`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
from pydantic import BaseModel


async def insert_if_new(
    conn: asyncpg.Connection,
    event_id: str,
    event_type: str,
    livemode: bool,
    created: datetime,
    payload: str,
) -> bool:
    """Record the event; False when it was already recorded (a duplicate delivery).
    Concurrent deliveries of one id serialise on the primary key: exactly one inserts."""
    inserted = await conn.fetchval(
        """
        INSERT INTO stripe_events (id, type, livemode, stripe_created, payload, status)
        VALUES ($1, $2, $3, $4, $5::jsonb, 'processed')
        ON CONFLICT (id) DO NOTHING
        RETURNING true
        """,
        event_id,
        event_type,
        livemode,
        created,
        payload,
    )
    return bool(inserted)


async def count_duplicate(conn: asyncpg.Connection, event_id: str) -> None:
    await conn.execute("UPDATE stripe_events SET attempts = attempts + 1 WHERE id = $1", event_id)


async def set_outcome(
    conn: asyncpg.Connection,
    event_id: str,
    status: str,
    detail: str | None,
    order_id: UUID | None = None,
    hold_key: str | None = None,
) -> None:
    await conn.execute(
        """
        UPDATE stripe_events
           SET status = $2, detail = $3, order_id = COALESCE($4, order_id), hold_key = $5,
               processed_at = clock_timestamp()
         WHERE id = $1
        """,
        event_id,
        status,
        detail,
        order_id,
        hold_key,
    )


@dataclass(frozen=True)
class StoredEvent:
    id: str
    type: str
    payload: dict[str, Any]
    status: str


def to_stored(row: asyncpg.Record) -> StoredEvent:
    return StoredEvent(row["id"], row["type"], json.loads(row["payload"]), row["status"])


async def lock_held(conn: asyncpg.Connection, hold_key: str) -> list[StoredEvent]:
    rows = await conn.fetch(
        """
        SELECT id, type, payload::text AS payload, status FROM stripe_events
         WHERE status = 'held' AND hold_key = $1
         ORDER BY stripe_created, received_at
           FOR UPDATE
        """,
        hold_key,
    )
    return [to_stored(r) for r in rows]


async def lock_one(conn: asyncpg.Connection, event_id: str) -> StoredEvent | None:
    row = await conn.fetchrow(
        "SELECT id, type, payload::text AS payload, status FROM stripe_events WHERE id = $1 FOR UPDATE",
        event_id,
    )
    return to_stored(row) if row else None


class EventSummary(BaseModel):
    """A received Stripe event as the admin list shows it."""

    id: str
    type: str
    status: str
    detail: str | None
    order_id: UUID | None
    attempts: int
    livemode: bool
    received_at: datetime
    processed_at: datetime | None


async def search(
    conn: asyncpg.Connection, status: str | None, event_type: str | None, limit: int, offset: int
) -> list[EventSummary]:
    rows = await conn.fetch(
        """
        SELECT id, type, status, detail, order_id, attempts, livemode, received_at, processed_at
          FROM stripe_events
         WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR type = $2)
         ORDER BY received_at DESC
         LIMIT $3 OFFSET $4
        """,
        status,
        event_type,
        limit,
        offset,
    )
    return [EventSummary.model_validate(dict(r)) for r in rows]
