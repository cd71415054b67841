"""SQL of the `stripe_sync` table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from uuid import UUID, uuid4

import asyncpg

from tessera.billing.catalog.schemas import SyncState, SyncStateName
from tessera.shared.sellers import Tenant

ObjectType = Literal["product", "price"]
STATE_COLUMNS = (
    "state, version, synced_version, attempts, last_error,"
    " CASE WHEN state IN ('pending', 'failed') THEN next_attempt_at END AS next_attempt_at,"
    " synced_at"
)


@dataclass(frozen=True)
class Due:
    """A claimed row: which object, at which version, under which claim's lease."""

    tenant: Tenant
    object_type: ObjectType
    object_key: str
    version: int
    attempts: int
    lease: UUID


async def changed(
    conn: asyncpg.Connection,
    tenant: Tenant,
    object_type: ObjectType,
    object_key: str,
    state: SyncStateName,
) -> None:
    """The object changed: Stripe should see its new version (a new row starts at 1)."""
    await conn.execute(
        """
        INSERT INTO stripe_sync (seller_id, mode, object_type, object_key, state)
        VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (seller_id, mode, object_type, object_key) DO UPDATE SET
            version = stripe_sync.version + 1, state = EXCLUDED.state, attempts = 0,
            last_error = NULL, next_attempt_at = clock_timestamp(),
            updated_at = clock_timestamp()
        """,
        tenant.seller_id,
        tenant.mode,
        object_type,
        object_key,
        state,
    )


async def mark_synced(
    conn: asyncpg.Connection,
    tenant: Tenant,
    object_type: ObjectType,
    object_key: str,
    state: SyncStateName,
) -> None:
    """An object made in step with Stripe by other means (a price id given by hand)."""
    await conn.execute(
        """
        UPDATE stripe_sync SET state = $5, synced_version = version, synced_at = clock_timestamp(),
                               updated_at = clock_timestamp()
        WHERE seller_id = $1 AND mode = $2 AND object_type = $3 AND object_key = $4
        """,
        tenant.seller_id,
        tenant.mode,
        object_type,
        object_key,
        state,
    )


async def states(
    conn: asyncpg.Connection, tenant: Tenant, object_type: ObjectType, keys: list[str]
) -> dict[str, SyncState]:
    rows = await conn.fetch(
        f"SELECT object_key, {STATE_COLUMNS} FROM stripe_sync"  # noqa: S608 - constants
        " WHERE seller_id = $1 AND mode = $2 AND object_type = $3 AND object_key = ANY($4)",
        tenant.seller_id,
        tenant.mode,
        object_type,
        keys,
    )
    return {
        r["object_key"]: SyncState(**{k: v for k, v in r.items() if k != "object_key"})
        for r in rows
    }


async def claim(conn: asyncpg.Connection, limit: int, lease_seconds: float) -> list[Due]:
    """Due rows, products first (a price needs its product's Stripe id); each is leased
    to this claim so another replica leaves it while this one calls Stripe (two calls for
    one object could land in Stripe in the wrong order), and taken again if this one dies."""
    lease = uuid4()
    rows = await conn.fetch(
        """
        WITH due AS (
            SELECT seller_id, mode, object_type, object_key FROM stripe_sync
            WHERE state IN ('pending', 'failed') AND next_attempt_at <= clock_timestamp()
              AND (leased_until IS NULL OR leased_until <= clock_timestamp())
            ORDER BY object_type DESC, next_attempt_at
            LIMIT $1 FOR UPDATE SKIP LOCKED
        )
        UPDATE stripe_sync s
        SET leased_until = clock_timestamp() + make_interval(secs => $2), leased_by = $3
        FROM due
        WHERE s.seller_id = due.seller_id AND s.mode = due.mode
          AND s.object_type = due.object_type AND s.object_key = due.object_key
        RETURNING s.seller_id, s.mode, s.object_type, s.object_key, s.version, s.attempts
        """,
        limit,
        lease_seconds,
        lease,
    )
    due = [
        Due(
            Tenant(r["seller_id"], r["mode"]),
            r["object_type"],
            r["object_key"],
            r["version"],
            r["attempts"],
            lease,
        )
        for r in rows
    ]
    # Products before prices, whatever order UPDATE … RETURNING gave them in.
    return sorted(due, key=lambda d: d.object_type != "product")


async def version_of(conn: asyncpg.Connection, due: Due) -> int | None:
    """The row's version now, locked (the worker finishes the version it synced only)."""
    value = await conn.fetchval(
        "SELECT version FROM stripe_sync WHERE seller_id = $1 AND mode = $2"
        " AND object_type = $3 AND object_key = $4 FOR UPDATE",
        due.tenant.seller_id,
        due.tenant.mode,
        due.object_type,
        due.object_key,
    )
    return int(value) if value is not None else None


async def finish(conn: asyncpg.Connection, due: Due, state: SyncStateName) -> None:
    """`due.version` is in Stripe (`synced`), or waits for an account (`awaiting_connect`);
    a newer version written meanwhile stays pending. Only the claim holding the row's lease
    records an outcome: one whose lease ran out mid-call leaves the row to the replica that
    took it (which calls again, with the same idempotency key), never clearing its lease."""
    await conn.execute(
        """
        UPDATE stripe_sync SET
            state = CASE WHEN version = $5 THEN $6 ELSE 'pending' END,
            synced_version = CASE WHEN $6 = 'synced' THEN $5 ELSE synced_version END,
            synced_at = CASE WHEN $6 = 'synced' THEN clock_timestamp() ELSE synced_at END,
            attempts = 0, last_error = NULL, leased_until = NULL,
            next_attempt_at = clock_timestamp(), updated_at = clock_timestamp()
        WHERE seller_id = $1 AND mode = $2 AND object_type = $3 AND object_key = $4
          AND leased_by = $7
        """,
        due.tenant.seller_id,
        due.tenant.mode,
        due.object_type,
        due.object_key,
        due.version,
        state,
        due.lease,
    )


async def failed(conn: asyncpg.Connection, due: Due, error: str, retry_in: float) -> None:
    """The attempt failed: `failed` with the error, retried after `retry_in` seconds. A
    newer version written meanwhile is a new change: pending, tried at once."""
    await conn.execute(
        """
        UPDATE stripe_sync SET
            state = CASE WHEN version = $5 THEN 'failed' ELSE 'pending' END,
            attempts = CASE WHEN version = $5 THEN attempts + 1 ELSE 0 END,
            last_error = CASE WHEN version = $5 THEN $6 END,
            next_attempt_at = clock_timestamp()
                + CASE WHEN version = $5 THEN make_interval(secs => $7) ELSE interval '0' END,
            leased_until = NULL, updated_at = clock_timestamp()
        WHERE seller_id = $1 AND mode = $2 AND object_type = $3 AND object_key = $4
          AND leased_by = $8
        """,
        due.tenant.seller_id,
        due.tenant.mode,
        due.object_type,
        due.object_key,
        due.version,
        error[:1000],
        retry_in,
        due.lease,
    )


async def renew_lease(conn: asyncpg.Connection, due: Due, lease_seconds: float) -> bool:
    """The row's lease runs from now, if this claim still holds it: False when it ran out
    and another replica has claimed the row since (that one calls Stripe for it)."""
    status = await conn.execute(
        "UPDATE stripe_sync SET leased_until = clock_timestamp() + make_interval(secs => $5)"
        " WHERE seller_id = $1 AND mode = $2 AND object_type = $3 AND object_key = $4"
        " AND leased_by = $6",
        due.tenant.seller_id,
        due.tenant.mode,
        due.object_type,
        due.object_key,
        lease_seconds,
        due.lease,
    )
    return bool(status.endswith(" 1"))


async def defer(conn: asyncpg.Connection, due: Due, retry_in: float) -> None:
    """Not this object's fault (its product is not in Stripe yet): try again soon."""
    await conn.execute(
        "UPDATE stripe_sync SET leased_until = NULL,"
        " next_attempt_at = greatest(next_attempt_at, clock_timestamp() + make_interval(secs => $5))"
        " WHERE seller_id = $1 AND mode = $2 AND object_type = $3 AND object_key = $4"
        " AND leased_by = $6",
        due.tenant.seller_id,
        due.tenant.mode,
        due.object_type,
        due.object_key,
        retry_in,
        due.lease,
    )


async def tenants_in(conn: asyncpg.Connection, state: SyncStateName) -> list[Tenant]:
    rows = await conn.fetch(
        "SELECT DISTINCT seller_id, mode FROM stripe_sync WHERE state = $1", state
    )
    return [Tenant(r["seller_id"], r["mode"]) for r in rows]


async def requeue(
    conn: asyncpg.Connection, tenant: Tenant, waiting: SyncStateName, state: SyncStateName
) -> int:
    """A tenant's rows that waited (`local`: no key then) take the state they would take
    now (`pending` for a tenant a key serves); how many."""
    status = await conn.execute(
        """
        UPDATE stripe_sync SET state = $4, attempts = 0, last_error = NULL,
                               next_attempt_at = clock_timestamp(), updated_at = clock_timestamp()
        WHERE seller_id = $1 AND mode = $2 AND state = $3
        """,
        tenant.seller_id,
        tenant.mode,
        waiting,
        state,
    )
    return int(status.split()[-1])
