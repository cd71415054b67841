"""Signing-key SQL."""

from __future__ import annotations

from datetime import datetime

import asyncpg


async def lock_keys(conn: asyncpg.Connection) -> None:
    # Serialises key creation and rotation across replicas and operator CLIs.
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('licensing.signing_keys'))")


async def current_key(conn: asyncpg.Connection) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT kid, public_key, private_sealed FROM signing_keys WHERE retired_at IS NULL"
    )


async def insert_key(
    conn: asyncpg.Connection, kid: str, public_key: bytes, private_sealed: bytes
) -> None:
    await conn.execute(
        "INSERT INTO signing_keys (kid, public_key, private_sealed) VALUES ($1, $2, $3)",
        kid,
        public_key,
        private_sealed,
    )


async def retire_current(conn: asyncpg.Connection, publish_for_seconds: float) -> str | None:
    kid: str | None = await conn.fetchval(
        """
        UPDATE signing_keys
           SET retired_at = clock_timestamp(),
               publish_until = clock_timestamp() + make_interval(secs => $1)
         WHERE retired_at IS NULL
        RETURNING kid
        """,
        publish_for_seconds,
    )
    return kid


async def longest_lease_seconds(conn: asyncpg.Connection) -> int:
    value = await conn.fetchval("SELECT max(lease_seconds + grace_seconds) FROM policies")
    return int(value or 0)


async def published_keys(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            """
            SELECT kid, public_key FROM signing_keys
             WHERE retired_at IS NULL OR publish_until > clock_timestamp()
             ORDER BY created_at DESC
            """
        )
    )


async def all_keys(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            "SELECT kid, created_at, retired_at, publish_until FROM signing_keys"
            " ORDER BY created_at DESC"
        )
    )


def as_dt(value: object) -> datetime | None:
    return value if isinstance(value, datetime) else None
