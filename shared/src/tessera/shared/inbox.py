"""The inbox: a consumer records each event id in the same transaction as its effect, so a
redelivered event (JetStream redelivery, a replay, a duplicate publish past the
de-duplication window) has no second effect.

Every consumer applies an event the one way, `first_delivery`:

    async with inbox.first_delivery(pool, event, CONSUMER) as conn:
        if conn is None:
            return None  # already applied
        ...  # the effect, on `conn`, in the transaction that holds the claim
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

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


@asynccontextmanager
async def first_delivery(
    pool: asyncpg.Pool, event: Event, consumer: str
) -> AsyncIterator[asyncpg.Connection | None]:
    """Open a transaction and claim `event` for `consumer` in it: yields the connection
    when this is the event's first delivery (apply the effect on it: the claim and the
    effect commit together, and an error rolls both back, so a redelivery tries again),
    or None when it was already applied (do nothing)."""
    async with pool.acquire() as conn, conn.transaction():
        yield conn if await claim(conn, event, consumer) else None
