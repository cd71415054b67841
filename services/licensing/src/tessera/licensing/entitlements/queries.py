"""SQL of `entitlements`."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from tessera.shared.events.billing import SubscriptionEvent
from tessera.shared.sellers import Tenant

COLUMNS = (
    'account_id, product, subscription_id, tier, grants, "interval", status,'
    " current_period_start, current_period_end, cancel_at_period_end, trial_end, grace_until,"
    " ended, started_at, sequence, updated_at"
)


async def keep_newest(conn: asyncpg.Connection, event: SubscriptionEvent, ended: bool) -> bool:
    """Write the subscription's state unless a newer one (a higher sequence) is there; True
    when written."""
    written = await conn.fetchval(
        f"""
        INSERT INTO entitlements (seller_id, mode, {COLUMNS})
        VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9, $10, $11, $12, $13, $14, $15, $16,
                $17, clock_timestamp())
        ON CONFLICT (seller_id, mode, account_id, product, subscription_id) DO UPDATE SET
            tier = EXCLUDED.tier, grants = EXCLUDED.grants, "interval" = EXCLUDED."interval",
            status = EXCLUDED.status, current_period_start = EXCLUDED.current_period_start,
            current_period_end = EXCLUDED.current_period_end,
            cancel_at_period_end = EXCLUDED.cancel_at_period_end,
            trial_end = EXCLUDED.trial_end, grace_until = EXCLUDED.grace_until,
            ended = EXCLUDED.ended, started_at = EXCLUDED.started_at,
            sequence = EXCLUDED.sequence, updated_at = clock_timestamp()
        WHERE entitlements.sequence < EXCLUDED.sequence
        RETURNING true
        """,  # noqa: S608 - COLUMNS is a constant
        event.seller_id,
        event.mode,
        event.account_id,
        event.product,
        event.subscription_id,
        event.tier,
        event.grants.model_dump_json(),
        event.interval,
        event.status,
        event.current_period_start,
        event.current_period_end,
        event.cancel_at_period_end,
        event.trial_end,
        event.grace_until,
        ended,
        event.started_at,
        event.sequence,
    )
    return bool(written)


async def of_account(
    conn: asyncpg.Connection, tenant: Tenant, account_id: UUID
) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            f"SELECT {COLUMNS} FROM entitlements"  # noqa: S608 - constants
            " WHERE seller_id = $1 AND mode = $2 AND account_id = $3"
            " ORDER BY product, started_at DESC, subscription_id",
            tenant.seller_id,
            tenant.mode,
            account_id,
        )
    )


async def customer_known(conn: asyncpg.Connection, tenant: Tenant, account_id: UUID) -> bool:
    """The tenant has this customer: billing announced its account, or a subscription of it."""
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM customers WHERE seller_id = $1 AND mode = $2"
            " AND account_id = $3) OR EXISTS (SELECT 1 FROM entitlements WHERE seller_id = $1"
            " AND mode = $2 AND account_id = $3)",
            tenant.seller_id,
            tenant.mode,
            account_id,
        )
    )
