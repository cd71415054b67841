"""SQL of `stripe_connect_states`: the OAuth `state` of each started connection."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import cast

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
