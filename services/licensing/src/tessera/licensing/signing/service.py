"""Signing-key verbs: make sure a key signs, rotate it, and keep each replica's ring fresh."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from nacl.signing import SigningKey

from tessera.licensing.signing import queries
from tessera.licensing.signing.crypto import Sealer, Signer, new_signer, public_jwk

log = logging.getLogger("tessera.licensing.signing")


@dataclass
class KeyRing:
    """What one replica signs with, and what it publishes. Swapped whole on refresh."""

    signer: Signer
    jwks: dict[str, Any] = field(default_factory=dict)


async def _create_key(conn: asyncpg.Connection, sealer: Sealer) -> Signer:
    signer = new_signer()
    await queries.insert_key(conn, signer.kid, signer.public_key, sealer.seal(bytes(signer.key)))
    return signer


async def ensure_key(pool: asyncpg.Pool, sealer: Sealer) -> str:
    """Create the first signing key if there is none. Returns the current kid."""
    async with pool.acquire() as conn, conn.transaction():
        await queries.lock_keys(conn)
        row = await queries.current_key(conn)
        if row is not None:
            return str(row["kid"])
        signer = await _create_key(conn, sealer)
        log.info("licensing.signing.key_created", extra={"kid": signer.kid})
        return signer.kid


async def rotate(
    pool: asyncpg.Pool, sealer: Sealer, replica_lag_seconds: float
) -> tuple[str, str | None]:
    """A new key signs from now on; the old one stays published until its last lease (and any
    a lagging replica signs before it notices) has expired. Returns (new kid, old kid)."""
    async with pool.acquire() as conn, conn.transaction():
        await queries.lock_keys(conn)
        publish_for = await queries.longest_lease_seconds(conn) + replica_lag_seconds + 60
        old = await queries.retire_current(conn, publish_for)
        signer = await _create_key(conn, sealer)
    log.info("licensing.signing.key_rotated", extra={"kid": signer.kid, "retired": old})
    return signer.kid, old


async def load_ring(pool: asyncpg.Pool, sealer: Sealer) -> KeyRing:
    async with pool.acquire() as conn:
        row = await queries.current_key(conn)
        published = await queries.published_keys(conn)
    if row is None:
        raise RuntimeError("no current signing key; run `tessera-licensing keys rotate`")
    signer = Signer(str(row["kid"]), SigningKey(sealer.open(bytes(row["private_sealed"]))))
    keys = [public_jwk(str(r["kid"]), bytes(r["public_key"])) for r in published]
    return KeyRing(signer=signer, jwks={"keys": keys})


async def keep_fresh(holder: Any, pool: asyncpg.Pool, sealer: Sealer, every: float) -> None:
    """Re-read the ring every `every` seconds so an operator's rotation reaches this replica."""
    while True:
        await asyncio.sleep(every)
        try:
            holder.ring = await load_ring(pool, sealer)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # keep the ring we have; Postgres may be briefly away
            log.warning("licensing.signing.refresh_failed", extra={"error": repr(error)})


async def list_keys(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        return await queries.all_keys(conn)
