"""User verbs."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from tessera.auth.users import queries
from tessera.shared import inbox, outbox
from tessera.shared.events.auth import UserCreated
from tessera.shared.events.billing import AccountCreated
from tessera.shared.events.envelope import new_event_id

CONSUMER = "auth.users"


async def create_user_for_account(pool: asyncpg.Pool, event: AccountCreated) -> UUID | None:
    """Create the account's user once and publish `auth.user.created.v1`.
    Returns the new user's id, or None when the event was already applied."""
    async with pool.acquire() as conn, conn.transaction():
        if not await inbox.claim(conn, event, CONSUMER):
            return None
        user_id = new_event_id()
        if not await queries.insert_if_absent(conn, user_id, event.account_id, event.email):
            return None
        await outbox.add(
            conn, UserCreated(user_id=user_id, account_id=event.account_id, email=event.email)
        )
        return user_id
