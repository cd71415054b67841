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


async def lock_plan_subscription(conn: asyncpg.Connection, subscription_id: str) -> UUID | None:
    """The seller a platform-plan subscription's row names (None for a new one), locked."""
    seller_id: UUID | None = await conn.fetchval(
        "SELECT seller_id FROM platform_plan_subscriptions WHERE subscription_id = $1 FOR UPDATE",
        subscription_id,
    )
    return seller_id


async def lock_sellers(conn: asyncpg.Connection, seller_ids: list[UUID]) -> set[UUID]:
    """Lock the sellers' rows, in id order (so two transactions never wait on each other in
    a circle); the ids that exist."""
    rows = await conn.fetch(
        "SELECT id FROM sellers WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE",
        sorted(seller_ids),
    )
    return {row["id"] for row in rows}


async def save_plan_subscription(
    conn: asyncpg.Connection,
    subscription_id: str,
    seller_id: UUID,
    sequence: int,
    started_at: datetime,
    status: str,
    grace_until: datetime | None,
) -> bool:
    """Take a subscription event's state unless its row holds a later one (the seller too:
    the newest event names it). Whether it changed anything."""
    changed: bool | None = await conn.fetchval(
        """
        INSERT INTO platform_plan_subscriptions AS held
               (subscription_id, seller_id, sequence, status, grace_until, started_at)
        VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (subscription_id) DO UPDATE
           SET seller_id = EXCLUDED.seller_id, sequence = EXCLUDED.sequence,
               status = EXCLUDED.status, grace_until = EXCLUDED.grace_until,
               started_at = EXCLUDED.started_at, updated_at = now()
         WHERE held.sequence < EXCLUDED.sequence
        RETURNING true
        """,
        subscription_id,
        seller_id,
        sequence,
        status,
        grace_until,
        started_at,
    )
    return bool(changed)


async def plan_subscriptions(conn: asyncpg.Connection, seller_id: UUID) -> list[asyncpg.Record]:
    """Every platform-plan subscription of the seller that is a plan (not `none`)."""
    rows: list[asyncpg.Record] = await conn.fetch(
        "SELECT subscription_id, sequence, status, grace_until, started_at"
        " FROM platform_plan_subscriptions WHERE seller_id = $1 AND status <> 'none'",
        seller_id,
    )
    return rows


async def set_plan(
    conn: asyncpg.Connection,
    seller_id: UUID,
    subscription_id: str | None,
    sequence: int,
    started_at: datetime | None,
    status: str,
    grace_until: datetime | None,
) -> asyncpg.Record | None:
    """Make the deciding subscription's state the seller's plan; the row (its version grown),
    or None when it already was."""
    row: asyncpg.Record | None = await conn.fetchrow(
        f"""
        UPDATE sellers
           SET plan_status = $5, plan_grace_until = $6, plan_subscription = $2,
               plan_sequence = $3, plan_started_at = $4, version = version + 1
         WHERE id = $1
           AND (plan_status, plan_grace_until, plan_subscription, plan_sequence, plan_started_at)
               IS DISTINCT FROM ($5, $6, $2, $3, $4)
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
