"""SQL of `stripe_connections`: which Stripe account each tenant has connected (Connect).

A tenant's connection and the catalog rows waiting for it change together: connecting,
disconnecting and every catalog write that picks a sync state take the tenant's lock
(`lock_tenant`, exclusive for the first two, shared for the writes), so a catalog write
never leaves a row `awaiting_connect` behind a connection that committed meanwhile."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, cast

import asyncpg

from tessera.shared.sellers import Mode, Tenant

Status = Literal["connected", "disconnected"]
DisconnectedBy = Literal["seller", "stripe"]
COLUMNS = (
    "seller_id, mode, account_id, livemode, status, scope, connected_at, disconnected_at,"
    " disconnected_by, COALESCE(authorized_at, connected_at) AS authorized_at"
)


@dataclass(frozen=True)
class Connection:
    tenant: Tenant
    account_id: str
    livemode: bool
    status: Status
    scope: str | None
    connected_at: datetime
    disconnected_at: datetime | None
    disconnected_by: DisconnectedBy | None
    # When the account authorized the platform (before the seller confirmed: `connected_at`).
    authorized_at: datetime


def _connection(row: asyncpg.Record) -> Connection:
    return Connection(
        Tenant(row["seller_id"], cast(Mode, row["mode"])),
        row["account_id"],
        row["livemode"],
        row["status"],
        row["scope"],
        row["connected_at"],
        row["disconnected_at"],
        row["disconnected_by"],
        row["authorized_at"],
    )


async def lock_tenant(conn: asyncpg.Connection, tenant: Tenant, *, shared: bool) -> None:
    """The tenant's connection lock, to the end of the transaction."""
    lock = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    await conn.execute(
        f"SELECT {lock}(hashtextextended('stripe-connect:' || $1::uuid::text || ':' || $2::text, 0))",
        tenant.seller_id,
        tenant.mode,
    )


async def lock_account(conn: asyncpg.Connection, account_id: str, mode: Mode) -> None:
    """The account's lock in a mode, to the end of the transaction: a connection that
    commits and an event of the account recorded meanwhile as waiting for one take it before
    they look for each other, so one of them always sees the other (stripe_events/awaiting.py)."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('stripe-account:' || $1 || ':' || $2, 0))",
        account_id,
        mode,
    )


async def find(conn: asyncpg.Connection, tenant: Tenant) -> Connection | None:
    row = await conn.fetchrow(
        f"SELECT {COLUMNS} FROM stripe_connections WHERE seller_id = $1 AND mode = $2",  # noqa: S608 - constant columns
        tenant.seller_id,
        tenant.mode,
    )
    return _connection(row) if row else None


async def connected_account(conn: asyncpg.Connection, tenant: Tenant) -> str | None:
    """The account the tenant has connected now, if any."""
    account: str | None = await conn.fetchval(
        "SELECT account_id FROM stripe_connections"
        " WHERE seller_id = $1 AND mode = $2 AND status = 'connected'",
        tenant.seller_id,
        tenant.mode,
    )
    return account


async def of_account(
    conn: asyncpg.Connection | asyncpg.Pool, account_id: str, mode: Mode
) -> Connection | None:
    """The connection that has the account in this mode now, whoever's it is. One of the
    reads across tenants on purpose: a Connect event names only its account."""
    row = await conn.fetchrow(
        f"SELECT {COLUMNS} FROM stripe_connections"  # noqa: S608 - constant columns
        " WHERE account_id = $1 AND mode = $2 AND status = 'connected'",
        account_id,
        mode,
    )
    return _connection(row) if row else None


async def connect(
    conn: asyncpg.Connection,
    tenant: Tenant,
    account_id: str,
    livemode: bool,
    scope: str | None,
    authorized_at: datetime,
) -> Connection:
    """Record the tenant's connection (a reconnection replaces the disconnected row).
    Raises `asyncpg.UniqueViolationError` when another seller has the account connected."""
    row = await conn.fetchrow(
        f"""
        INSERT INTO stripe_connections
               (seller_id, mode, account_id, livemode, status, scope, connected_at,
                authorized_at)
        VALUES ($1, $2, $3, $4, 'connected', $5, clock_timestamp(), $6)
        ON CONFLICT (seller_id, mode) DO UPDATE SET
            account_id = EXCLUDED.account_id, livemode = EXCLUDED.livemode,
            status = 'connected', scope = EXCLUDED.scope, connected_at = EXCLUDED.connected_at,
            authorized_at = EXCLUDED.authorized_at,
            disconnected_at = NULL, disconnected_by = NULL, updated_at = clock_timestamp()
        RETURNING {COLUMNS}
        """,  # noqa: S608 - constant columns
        tenant.seller_id,
        tenant.mode,
        account_id,
        livemode,
        scope,
        authorized_at,
    )
    assert row is not None
    return _connection(row)


async def disconnect(
    conn: asyncpg.Connection,
    tenant: Tenant,
    account_id: str,
    by: DisconnectedBy,
    not_after: datetime | None = None,
) -> bool:
    """Mark the tenant's connection to `account_id` ended; False if it was not connected
    to it. `not_after`: only a connection the account authorized at or before then (a
    deauthorization sent before a reconnection must not end the new connection; one sent
    after the authorization but before the seller confirmed it must)."""
    done = await conn.fetchval(
        """
        UPDATE stripe_connections
           SET status = 'disconnected', disconnected_at = clock_timestamp(),
               disconnected_by = $4, updated_at = clock_timestamp()
         WHERE seller_id = $1 AND mode = $2 AND account_id = $3 AND status = 'connected'
           AND ($5::timestamptz IS NULL
                OR date_trunc('second', COALESCE(authorized_at, connected_at)) <= $5)
        RETURNING true
        """,
        tenant.seller_id,
        tenant.mode,
        account_id,
        by,
        not_after,
    )
    return bool(done)
