"""SQL of `stripe_connect_states` (the OAuth `state` of each started connection) and
`stripe_connect_pending` (the authorizations Stripe's callback brought back, waiting for
the seller's confirmation)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast
from uuid import UUID, uuid4

import asyncpg

from tessera.shared.sellers import Mode, Tenant


def state_hash(state: str) -> bytes:
    return hashlib.sha256(state.encode()).digest()


async def add_state(conn: asyncpg.Connection, tenant: Tenant, state: str, ttl: timedelta) -> None:
    """Store the state (its hash) for the tenant; the tenant's expired ones go."""
    await conn.execute(
        "DELETE FROM stripe_connect_states"
        " WHERE seller_id = $1 AND mode = $2 AND expires_at < clock_timestamp()",
        tenant.seller_id,
        tenant.mode,
    )
    await conn.execute(
        "INSERT INTO stripe_connect_states (state_hash, seller_id, mode, expires_at)"
        " VALUES ($1, $2, $3, clock_timestamp() + $4)",
        state_hash(state),
        tenant.seller_id,
        tenant.mode,
        ttl,
    )


async def take_state(conn: asyncpg.Connection, state: str) -> Tenant | None:
    """The tenant that started the connection with `state`, once: the row is deleted, so a
    second use (or a replayed callback) finds nothing. None when unknown or expired. The
    state alone names its tenant: it is the secret the callback is bound by."""
    row = await conn.fetchrow(
        "DELETE FROM stripe_connect_states WHERE state_hash = $1"
        " RETURNING seller_id, mode, expires_at >= clock_timestamp() AS fresh",
        state_hash(state),
    )
    if row is None or not row["fresh"]:
        return None
    return Tenant(row["seller_id"], cast(Mode, row["mode"]))


@dataclass(frozen=True)
class Pending:
    """An account that authorized the platform through the tenant's link, not yet confirmed."""

    id: UUID
    tenant: Tenant
    account_id: str
    livemode: bool
    scope: str | None
    authorized_at: datetime
    expires_at: datetime


PENDING_COLUMNS = "id, seller_id, mode, account_id, livemode, scope, authorized_at, expires_at"


def _pending(row: asyncpg.Record) -> Pending:
    return Pending(
        row["id"],
        Tenant(row["seller_id"], cast(Mode, row["mode"])),
        row["account_id"],
        row["livemode"],
        row["scope"],
        row["authorized_at"],
        row["expires_at"],
    )


async def add_pending(
    conn: asyncpg.Connection,
    tenant: Tenant,
    account_id: str,
    livemode: bool,
    scope: str | None,
    ttl: timedelta,
) -> Pending:
    """Store an authorization for the tenant's confirmation; the tenant's expired ones go."""
    await conn.execute(
        "DELETE FROM stripe_connect_pending"
        " WHERE seller_id = $1 AND mode = $2 AND expires_at < clock_timestamp()",
        tenant.seller_id,
        tenant.mode,
    )
    row = await conn.fetchrow(
        f"""
        INSERT INTO stripe_connect_pending
               (id, seller_id, mode, account_id, livemode, scope, expires_at)
        VALUES ($1, $2, $3, $4, $5, $6, clock_timestamp() + $7)
        RETURNING {PENDING_COLUMNS}
        """,  # noqa: S608 - constant columns
        uuid4(),
        tenant.seller_id,
        tenant.mode,
        account_id,
        livemode,
        scope,
        ttl,
    )
    assert row is not None
    return _pending(row)


async def list_pending(conn: asyncpg.Connection, tenant: Tenant) -> list[Pending]:
    rows = await conn.fetch(
        f"SELECT {PENDING_COLUMNS} FROM stripe_connect_pending"  # noqa: S608 - constant columns
        " WHERE seller_id = $1 AND mode = $2 AND expires_at >= clock_timestamp()"
        " ORDER BY authorized_at DESC",
        tenant.seller_id,
        tenant.mode,
    )
    return [_pending(r) for r in rows]


async def take_pending(
    conn: asyncpg.Connection, tenant: Tenant, pending_id: UUID
) -> Pending | None:
    """The tenant's unexpired pending authorization `pending_id`, deleted with every other
    of the tenant's (one is confirmed; the rest are moot). None: not the tenant's, used or
    expired (another tenant's id is not found, whatever it is), and the caller's refusal
    rolls its transaction back, deletions included."""
    rows = await conn.fetch(
        f"""
        DELETE FROM stripe_connect_pending WHERE seller_id = $1 AND mode = $2
        RETURNING {PENDING_COLUMNS}, expires_at >= clock_timestamp() AS fresh
        """,  # noqa: S608 - constant columns
        tenant.seller_id,
        tenant.mode,
    )
    chosen = [r for r in rows if r["id"] == pending_id and r["fresh"]]
    return _pending(chosen[0]) if chosen else None
