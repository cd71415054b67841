"""SQL of `usage_plans`, `usage_counters` and `usage_records`."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

from tessera.shared.sellers import Tenant

# Every grant the customer holds, subscriptions' and the seller-assigned plan's, in one read.
GRANTS = """
SELECT 'subscription' AS source, tier, grants, "interval", status, current_period_start,
       current_period_end, grace_until, ended, started_at
  FROM entitlements WHERE seller_id = $1 AND mode = $2 AND account_id = $3
UNION ALL
SELECT 'assigned', tier, grants, 'month', 'active', NULL, NULL, NULL, false, assigned_at
  FROM usage_plans WHERE seller_id = $1 AND mode = $2 AND account_id = $3
"""


async def grants_of(
    conn: asyncpg.Connection, tenant: Tenant, account: UUID
) -> list[asyncpg.Record]:
    return list(await conn.fetch(GRANTS, tenant.seller_id, tenant.mode, account))


async def used(
    conn: asyncpg.Connection, tenant: Tenant, account: UUID, feature: str, period_start: datetime
) -> int:
    value = await conn.fetchval(
        "SELECT used FROM usage_counters WHERE seller_id = $1 AND mode = $2 AND account_id = $3"
        " AND feature = $4 AND period_start = $5",
        tenant.seller_id, tenant.mode, account, feature, period_start,
    )  # fmt: skip
    return int(value or 0)


async def used_by_feature(
    conn: asyncpg.Connection, tenant: Tenant, account: UUID, periods: dict[str, datetime]
) -> dict[str, int]:
    """The counters of each feature's current period."""
    if not periods:
        return {}
    rows = await conn.fetch(
        "SELECT c.feature, c.used FROM usage_counters c"
        " JOIN unnest($4::text[], $5::timestamptz[]) AS p(feature, period_start)"
        "   ON c.feature = p.feature AND c.period_start = p.period_start"
        " WHERE c.seller_id = $1 AND c.mode = $2 AND c.account_id = $3",
        tenant.seller_id, tenant.mode, account, list(periods), list(periods.values()),
    )  # fmt: skip
    return {r["feature"]: int(r["used"]) for r in rows}


# Raise the counter only while it stays within the limit ($8; NULL: unlimited). The upsert
# takes the counter row's lock, so concurrent records of one customer and feature run one at
# a time on any number of replicas, each seeing the previous one's total. The record row is
# written only when the counter was raised, with the total it reached (the answer replayed
# for its idempotency key); a key already used makes `id` NULL, and the caller rolls back.
COUNT = """
WITH counter AS (
    INSERT INTO usage_counters
        (seller_id, mode, account_id, feature, period_start, period_end, used)
    VALUES ($1, $2, $3, $4, $5, $6, $7)
    ON CONFLICT (seller_id, mode, account_id, feature, period_start) DO UPDATE
        SET used = usage_counters.used + EXCLUDED.used, period_end = EXCLUDED.period_end
        WHERE $8::bigint IS NULL OR usage_counters.used + EXCLUDED.used <= $8::bigint
    RETURNING used
), record AS (
    INSERT INTO usage_records (id, seller_id, mode, account_id, feature, period_start,
                               period_end, amount, idempotency_key, used_after, limit_at,
                               recorded_at)
    SELECT $9, $1, $2, $3, $4, $5, $6, $7, $10, counter.used, $8, $11 FROM counter
    ON CONFLICT (seller_id, mode, idempotency_key) DO NOTHING
    RETURNING id
)
SELECT (SELECT used FROM counter) AS used, (SELECT id FROM record) AS id
"""


async def count(
    conn: asyncpg.Connection,
    tenant: Tenant,
    account: UUID,
    feature: str,
    period: tuple[datetime, datetime],
    amount: int,
    limit: int | None,
    record_id: UUID,
    idempotency_key: str,
    now: datetime,
) -> tuple[int | None, UUID | None]:
    """(the counter's new total or None when over the limit, the record's id or None when
    the key was used already)."""
    row = await conn.fetchrow(
        COUNT, tenant.seller_id, tenant.mode, account, feature, period[0], period[1], amount,
        limit, record_id, idempotency_key, now,
    )  # fmt: skip
    assert row is not None  # a SELECT of two scalar subqueries always has its one row
    return row["used"], row["id"]


# The common case in one statement outside any explicit transaction: one round trip, the
# counter raised and the record written atomically and committed before it returns (instead
# of BEGIN, COUNT, COMMIT). The counter is raised only while the new total stays within
# `$12` (the service's ceiling: the limit, or below the first threshold, whose announcement
# needs the full transaction). The record row is inserted without ON CONFLICT: a key used
# already raises a unique violation, which aborts the whole statement, the counter's raise
# with it (a concurrent record with the same key is waited for first).
COUNT_QUICK = """
WITH counter AS (
    INSERT INTO usage_counters
        (seller_id, mode, account_id, feature, period_start, period_end, used)
    VALUES ($1, $2, $3, $4, $5, $6, $7)
    ON CONFLICT (seller_id, mode, account_id, feature, period_start) DO UPDATE
        SET used = usage_counters.used + EXCLUDED.used, period_end = EXCLUDED.period_end
        WHERE $12::bigint IS NULL OR usage_counters.used + EXCLUDED.used <= $12::bigint
    RETURNING used
)
INSERT INTO usage_records (id, seller_id, mode, account_id, feature, period_start,
                           period_end, amount, idempotency_key, used_after, limit_at, recorded_at)
SELECT $9, $1, $2, $3, $4, $5, $6, $7, $10, counter.used, $8, $11 FROM counter
RETURNING used_after
"""


async def count_quick(
    conn: asyncpg.Connection,
    tenant: Tenant,
    account: UUID,
    feature: str,
    period: tuple[datetime, datetime],
    amount: int,
    limit: int | None,
    ceiling: int | None,
    record_id: UUID,
    idempotency_key: str,
    now: datetime,
) -> int | None:
    """The counter's new total, or None when it would pass `ceiling` (nothing written).
    Raises `asyncpg.UniqueViolationError` when the key was used already (nothing written).
    Must run outside a transaction: its own commit is what makes the record durable."""
    assert not conn.is_in_transaction()
    value = await conn.fetchval(
        COUNT_QUICK, tenant.seller_id, tenant.mode, account, feature, period[0], period[1],
        amount, limit, record_id, idempotency_key, now, ceiling,
    )  # fmt: skip
    return None if value is None else int(value)


RECORD_COLUMNS = (
    "id, account_id, feature, period_start, period_end, amount, idempotency_key, used_after,"
    " limit_at, recorded_at, reverted_at"
)


async def record_by_key(
    conn: asyncpg.Connection, tenant: Tenant, idempotency_key: str
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {RECORD_COLUMNS} FROM usage_records"  # noqa: S608 - constants
        " WHERE seller_id = $1 AND mode = $2 AND idempotency_key = $3",
        tenant.seller_id, tenant.mode, idempotency_key,
    )  # fmt: skip


async def record_by_id(
    conn: asyncpg.Connection, tenant: Tenant, record_id: UUID, *, lock: bool = False
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {RECORD_COLUMNS} FROM usage_records"  # noqa: S608 - constants
        " WHERE seller_id = $1 AND mode = $2 AND id = $3" + (" FOR UPDATE" if lock else ""),
        tenant.seller_id, tenant.mode, record_id,
    )  # fmt: skip


async def lock_counter(
    conn: asyncpg.Connection, tenant: Tenant, account: UUID, feature: str, period_start: datetime
) -> None:
    await conn.execute(
        "SELECT 1 FROM usage_counters WHERE seller_id = $1 AND mode = $2 AND account_id = $3"
        " AND feature = $4 AND period_start = $5 FOR UPDATE",
        tenant.seller_id, tenant.mode, account, feature, period_start,
    )  # fmt: skip


async def mark_reverted(
    conn: asyncpg.Connection, tenant: Tenant, record_id: UUID, now: datetime
) -> asyncpg.Record | None:
    """Mark the record reverted unless it is already; the record when it was just now."""
    return await conn.fetchrow(
        "UPDATE usage_records SET reverted_at = $4"  # noqa: S608 - constants
        " WHERE seller_id = $1 AND mode = $2 AND id = $3 AND reverted_at IS NULL"
        f" RETURNING {RECORD_COLUMNS}",
        tenant.seller_id, tenant.mode, record_id, now,
    )  # fmt: skip


async def uncount(conn: asyncpg.Connection, tenant: Tenant, record: asyncpg.Record) -> None:
    """Take a reverted record's amount back off its period's counter."""
    await conn.execute(
        "UPDATE usage_counters SET used = used - $6"
        " WHERE seller_id = $1 AND mode = $2 AND account_id = $3 AND feature = $4"
        " AND period_start = $5",
        tenant.seller_id, tenant.mode, record["account_id"], record["feature"],
        record["period_start"], record["amount"],
    )  # fmt: skip


async def assign_plan(
    conn: asyncpg.Connection, tenant: Tenant, account: UUID, tier: str, grants: str, now: datetime
) -> None:
    await conn.execute(
        "INSERT INTO usage_plans (seller_id, mode, account_id, tier, grants, assigned_at)"
        " VALUES ($1, $2, $3, $4, $5::jsonb, $6)"
        " ON CONFLICT (seller_id, mode, account_id) DO UPDATE"
        " SET tier = EXCLUDED.tier, grants = EXCLUDED.grants, assigned_at = EXCLUDED.assigned_at",
        tenant.seller_id, tenant.mode, account, tier, grants, now,
    )  # fmt: skip


async def remove_plan(conn: asyncpg.Connection, tenant: Tenant, account: UUID) -> bool:
    status = await conn.execute(
        "DELETE FROM usage_plans WHERE seller_id = $1 AND mode = $2 AND account_id = $3",
        tenant.seller_id, tenant.mode, account,
    )  # fmt: skip
    return bool(status != "DELETE 0")


async def first_reached(
    conn: asyncpg.Connection,
    tenant: Tenant,
    account: UUID,
    feature: str,
    period_start: datetime,
    thresholds: list[int],
    now: datetime,
) -> list[int]:
    """Of `thresholds` (all reached now), those not reached before in this period."""
    rows = await conn.fetch(
        "INSERT INTO usage_thresholds"
        " (seller_id, mode, account_id, feature, period_start, threshold, reached_at)"
        " SELECT $1, $2, $3, $4, $5, t, $7 FROM unnest($6::int[]) AS t"
        " ON CONFLICT DO NOTHING RETURNING threshold",
        tenant.seller_id, tenant.mode, account, feature, period_start, thresholds, now,
    )  # fmt: skip
    return sorted(r["threshold"] for r in rows)
