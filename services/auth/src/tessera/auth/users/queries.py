"""SQL of the `users` table."""

from __future__ import annotations

from uuid import UUID

import asyncpg


async def insert_if_absent(
    conn: asyncpg.Connection, user_id: UUID, account_id: UUID, email: str
) -> bool:
    inserted = await conn.fetchval(
        """
        INSERT INTO users (id, account_id, email) VALUES ($1, $2, $3)
        ON CONFLICT DO NOTHING
        RETURNING true
        """,
        user_id,
        account_id,
        email,
    )
    return bool(inserted)


async def count_for_account(conn: asyncpg.Connection, account_id: UUID) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM users WHERE account_id = $1", account_id))
