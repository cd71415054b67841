"""The inbox: a consumer records each event id in the same transaction as its effect, so a
redelivered event (JetStream redelivery, a replay, a duplicate publish past the
de-duplication window) has no second effect."""

from __future__ import annotations

import asyncpg

from tessera.shared.events.envelope import Event


async def claim(conn: asyncpg.Connection, event: Event, consumer: str) -> bool:
    """True if `consumer` sees `event` for the first time; False if already applied.

    Must run inside the transaction that applies the effect: a rollback releases the claim.
    Concurrent claims of one event serialise on the primary key, and only one wins.
    """
    claimed = await conn.fetchval(
        """
        INSERT INTO inbox (consumer, event_id, subject) VALUES ($1, $2, $3)
        ON CONFLICT (consumer, event_id) DO NOTHING
        RETURNING true
        """,
        consumer,
        event.event_id,
        event.subject,
    )
    return bool(claimed)
