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
    # Across every tenant: the lease-signing keys are the platform's, so a retired key stays
    # published until the longest lease any seller's policy grants has run out.
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


async def insert_root(
    conn: asyncpg.Connection, kid: str, public_key: bytes, private_sealed: bytes | None
) -> None:
    await conn.execute(
        "INSERT INTO root_keys (kid, public_key, private_sealed) VALUES ($1, $2, $3)"
        " ON CONFLICT (kid) DO NOTHING",
        kid,
        public_key,
        private_sealed,
    )


async def active_roots(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """Roots not retired, sealed ones (which this process can sign with) first."""
    return list(
        await conn.fetch(
            "SELECT kid, public_key, private_sealed, created_at FROM root_keys"
            " WHERE retired_at IS NULL ORDER BY private_sealed IS NULL, created_at"
        )
    )


async def all_roots(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            "SELECT kid, public_key, private_sealed IS NOT NULL AS sealed, created_at, retired_at"
            " FROM root_keys ORDER BY created_at"
        )
    )


async def retire_root(conn: asyncpg.Connection, kid: str) -> bool:
    done: str = await conn.execute(
        "UPDATE root_keys SET retired_at = clock_timestamp() WHERE kid = $1 AND retired_at IS NULL",
        kid,
    )
    return done.endswith(" 1")


async def next_set_version(conn: asyncpg.Connection) -> int:
    value = await conn.fetchval("SELECT coalesce(max(version), 0) + 1 FROM key_sets")
    return int(value)


async def insert_key_set(
    conn: asyncpg.Connection,
    version: int,
    root_kid: str,
    jws: str,
    kids: list[str],
    issued_at: datetime,
    expires_at: datetime,
) -> None:
    await conn.execute(
        "INSERT INTO key_sets (version, root_kid, jws, kids, issued_at, expires_at)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        version,
        root_kid,
        jws,
        kids,
        issued_at,
        expires_at,
    )


async def latest_key_sets(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """Every signature of the highest version (one per root that signed it)."""
    return list(
        await conn.fetch(
            """
            SELECT version, root_kid, jws, kids, issued_at, expires_at FROM key_sets
             WHERE version = (SELECT max(version) FROM key_sets)
             ORDER BY root_kid
            """
        )
    )
