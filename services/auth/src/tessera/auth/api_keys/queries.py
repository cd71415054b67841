"""SQL on `api_keys` (owned here)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

from tessera.shared.api_keys import IssuedKey


async def insert(
    conn: asyncpg.Connection,
    key_id: UUID,
    seller_id: UUID,
    pair_id: UUID,
    name: str,
    issued: IssuedKey,
    created_by: UUID | None,
) -> asyncpg.Record:
    row: asyncpg.Record = await conn.fetchrow(
        """INSERT INTO api_keys
                (id, seller_id, mode, kind, pair_id, name, key_hash, display_prefix, last4,
                 created_by)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
            RETURNING *""",
        key_id, seller_id, issued.mode, issued.kind, pair_id, name, issued.key_hash,
        issued.display_prefix, issued.last_four, created_by,
    )  # fmt: skip
    return row


async def of_seller(
    conn: asyncpg.Connection | asyncpg.Pool, seller_id: UUID
) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            "SELECT * FROM api_keys WHERE seller_id = $1 ORDER BY created_at DESC, pair_id, kind",
            seller_id,
        )
    )


async def lock_pair(
    conn: asyncpg.Connection, seller_id: UUID, pair_id: UUID
) -> list[asyncpg.Record]:
    """The pair's keys, locked, if the pair is the seller's (else none)."""
    return list(
        await conn.fetch(
            "SELECT * FROM api_keys WHERE seller_id = $1 AND pair_id = $2 ORDER BY kind FOR UPDATE",
            seller_id,
            pair_id,
        )
    )


async def set_not_after(
    conn: asyncpg.Connection, seller_id: UUID, pair_id: UUID, not_after: datetime
) -> list[asyncpg.Record]:
    """Start a rotation overlap: the pair's active keys end at `not_after`."""
    return list(
        await conn.fetch(
            """UPDATE api_keys SET not_after = $3, version = version + 1
                WHERE seller_id = $1 AND pair_id = $2 AND status = 'active'
                  AND (not_after IS NULL OR not_after > $3)
                RETURNING *""",
            seller_id,
            pair_id,
            not_after,
        )
    )


async def revoke(conn: asyncpg.Connection, seller_id: UUID, pair_id: UUID) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            """UPDATE api_keys SET status = 'revoked', version = version + 1
                WHERE seller_id = $1 AND pair_id = $2 AND status = 'active'
                RETURNING *""",
            seller_id,
            pair_id,
        )
    )


async def every_key(conn: asyncpg.Connection | asyncpg.Pool) -> list[asyncpg.Record]:
    return list(await conn.fetch("SELECT * FROM api_keys ORDER BY created_at, id"))


async def note_used(
    conn: asyncpg.Connection | asyncpg.Pool, used: list[tuple[UUID, datetime]]
) -> int:
    """Move each key's `last_used_at` forward (never back: batches arrive in any order)."""
    result: str = await conn.execute(
        """UPDATE api_keys k SET last_used_at = u.at
           FROM unnest($1::uuid[], $2::timestamptz[]) AS u(id, at)
           WHERE k.id = u.id AND (k.last_used_at IS NULL OR k.last_used_at < u.at)""",
        [k for k, _ in used],
        [at for _, at in used],
    )
    return int(result.split()[-1])
