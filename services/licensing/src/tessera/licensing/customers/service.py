"""Customer verbs."""

from __future__ import annotations

import asyncpg

from tessera.shared import inbox
from tessera.shared.events.billing import AccountCreated

CONSUMER = "licensing.customers"


async def register_customer(pool: asyncpg.Pool, event: AccountCreated) -> bool:
    """Remember the account once, in the event's tenant. Returns False when the event was
    already applied."""
    async with inbox.first_delivery(pool, event, CONSUMER) as conn:
        if conn is None:
            return False
        await conn.execute(
            "INSERT INTO customers (account_id, email, seller_id, mode) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT DO NOTHING",
            event.account_id,
            event.email,
            event.seller_id,
            event.mode,
        )
        return True
