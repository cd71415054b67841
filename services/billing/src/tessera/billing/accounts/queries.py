"""SQL of the `accounts` table."""

from __future__ import annotations

from uuid import UUID

import asyncpg


async def insert_if_absent(
    conn: asyncpg.Connection, account_id: UUID, email: str, source: str
) -> bool:
    """Insert the account unless the email already has one. True when inserted."""
    inserted = await conn.fetchval(
        """
        INSERT INTO accounts (id, email, source) VALUES ($1, $2, $3)
        ON CONFLICT (email) DO NOTHING
        RETURNING true
        """,
        account_id,
        email,
        source,
    )
    return bool(inserted)


async def find_id_by_email(conn: asyncpg.Connection, email: str) -> UUID | None:
    found: UUID | None = await conn.fetchval("SELECT id FROM accounts WHERE email = $1", email)
    return found
