"""SQL of the `sellers` table."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

# `settings` is jsonb, handed over as text (the pool sets no codec).
SELLER_COLUMNS = (
    "id, slug, name, signup_policy, status, settings, version, created_at,"
    " plan_status, plan_grace_until"
)


async def insert_if_absent(
    conn: asyncpg.Connection, seller_id: UUID, slug: str, name: str, signup_policy: str
) -> asyncpg.Record | None:
    """The new row, or None when the id or the slug is taken (no error: the caller decides
    what a taken one means)."""
    row: asyncpg.Record | None = await conn.fetchrow(
        f"""
        INSERT INTO sellers (id, slug, name, signup_policy) VALUES ($1, $2, $3, $4)
        ON CONFLICT DO NOTHING
        RETURNING {SELLER_COLUMNS}
        """,  # noqa: S608 - constant columns
        seller_id,
        slug,
        name,
        signup_policy,
    )
    return row


async def find_by_id(
    conn: asyncpg.Connection | asyncpg.Pool, seller_id: UUID, *, for_update: bool = False
) -> asyncpg.Record | None:
    lock = " FOR UPDATE" if for_update else ""
    row: asyncpg.Record | None = await conn.fetchrow(
        f"SELECT {SELLER_COLUMNS} FROM sellers WHERE id = $1{lock}",  # noqa: S608
        seller_id,
    )
    return row


async def find_by_slug(conn: asyncpg.Connection | asyncpg.Pool, slug: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        f"SELECT {SELLER_COLUMNS} FROM sellers WHERE slug = $1",  # noqa: S608
        slug,
    )
    return row


async def slug_taken(conn: asyncpg.Connection | asyncpg.Pool, slug: str) -> bool:
    return bool(await conn.fetchval("SELECT true FROM sellers WHERE slug = $1", slug))


async def set_signup_policy(
    conn: asyncpg.Connection, seller_id: UUID, policy: str
) -> asyncpg.Record | None:
    """The changed row (its version grown), or None when the policy was already that."""
    row: asyncpg.Record | None = await conn.fetchrow(
        f"""
        UPDATE sellers SET signup_policy = $2, version = version + 1
         WHERE id = $1 AND signup_policy <> $2
        RETURNING {SELLER_COLUMNS}
        """,  # noqa: S608 - constant columns
        seller_id,
        policy,
    )
    return row


async def all_sellers(conn: asyncpg.Connection | asyncpg.Pool) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        f"SELECT {SELLER_COLUMNS} FROM sellers ORDER BY created_at, id"  # noqa: S608
    )
    return rows


async def update(
    conn: asyncpg.Connection, seller_id: UUID, name: str | None, signup_policy: str | None
) -> asyncpg.Record | None:
    """Change what is given; the changed row (its version grown), or None when nothing
    changed."""
    row: asyncpg.Record | None = await conn.fetchrow(
        f"""
        UPDATE sellers
           SET name = coalesce($2, name), signup_policy = coalesce($3, signup_policy),
               version = version + 1
         WHERE id = $1
           AND (name IS DISTINCT FROM coalesce($2, name)
                OR signup_policy IS DISTINCT FROM coalesce($3, signup_policy))
        RETURNING {SELLER_COLUMNS}
        """,  # noqa: S608 - constant columns
        seller_id,
        name,
        signup_policy,
    )
    return row


async def set_status(conn: asyncpg.Connection, slug: str, status: str) -> asyncpg.Record | None:
    """The changed row (its version grown), or None when no seller has the slug or its
    status was already that."""
    row: asyncpg.Record | None = await conn.fetchrow(
        f"""
        UPDATE sellers SET status = $2, version = version + 1
         WHERE slug = $1 AND status <> $2
        RETURNING {SELLER_COLUMNS}
        """,  # noqa: S608 - constant columns
        slug,
        status,
    )
    return row


async def set_settings(conn: asyncpg.Connection, seller_id: UUID, settings: str) -> asyncpg.Record:
    """Store the seller's settings document (JSON text); the row, its version grown."""
    row: asyncpg.Record = await conn.fetchrow(
        f"""
        UPDATE sellers SET settings = $2::jsonb, version = version + 1
         WHERE id = $1
        RETURNING {SELLER_COLUMNS}
        """,  # noqa: S608 - constant columns
        seller_id,
        settings,
    )
    return row


async def set_plan(
    conn: asyncpg.Connection,
    seller_id: UUID,
    subscription_id: str,
    sequence: int,
    started_at: datetime,
    status: str,
    grace_until: datetime | None,
) -> asyncpg.Record | None:
    """Take a subscription event's plan state unless the row holds a newer one: a later
    event of the same subscription, or a subscription started later (ties by id). None when
    it changed nothing (the seller unknown, or the event stale)."""
    row: asyncpg.Record | None = await conn.fetchrow(
        f"""
        UPDATE sellers
           SET plan_status = $5, plan_grace_until = $6, plan_subscription = $2,
               plan_sequence = $3, plan_started_at = $4, version = version + 1
         WHERE id = $1
           AND (plan_subscription IS NULL
                OR (plan_subscription = $2 AND plan_sequence < $3)
                OR (plan_subscription <> $2
                    AND (plan_started_at, plan_subscription) < ($4, $2)))
        RETURNING {SELLER_COLUMNS}
        """,  # noqa: S608 - constant columns
        seller_id,
        subscription_id,
        sequence,
        started_at,
        status,
        grace_until,
    )
    return row
