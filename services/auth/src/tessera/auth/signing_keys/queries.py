"""SQL of the `signing_keys` table."""

from __future__ import annotations

from datetime import timedelta

import asyncpg


async def lock_keys(conn: asyncpg.Connection) -> None:
    # One creator at a time: replicas starting together must not each mint a first key.
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('tessera-auth.signing_keys'))")


async def active(conn: asyncpg.Connection | asyncpg.Pool) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT kid, private_key_encrypted, public_key FROM signing_keys WHERE retired_at IS NULL"
    )
    return row


async def published(
    conn: asyncpg.Connection | asyncpg.Pool, grace: timedelta
) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        """
        SELECT kid, public_key, created_at, retired_at FROM signing_keys
         WHERE retired_at IS NULL OR retired_at > clock_timestamp() - $1::interval
         ORDER BY created_at DESC
        """,
        grace,
    )
    return rows


async def retire_active(conn: asyncpg.Connection) -> None:
    await conn.execute(
        "UPDATE signing_keys SET retired_at = clock_timestamp() WHERE retired_at IS NULL"
    )


async def insert(conn: asyncpg.Connection, kid: str, sealed: bytes, public: bytes) -> None:
    await conn.execute(
        "INSERT INTO signing_keys (kid, private_key_encrypted, public_key) VALUES ($1, $2, $3)",
        kid,
        sealed,
        public,
    )


async def all_sealed(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        "SELECT kid, private_key_encrypted FROM signing_keys ORDER BY created_at"
    )
    return rows


async def reseal(conn: asyncpg.Connection, kid: str, sealed: bytes) -> None:
    await conn.execute(
        "UPDATE signing_keys SET private_key_encrypted = $2 WHERE kid = $1", kid, sealed
    )
