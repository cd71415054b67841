"""The signing keys: create, rotate, load (unsealing), and publish as a JWKS.

Keys, sealing, JWK rendering and the publish-until of a retired key come from the kernel
(tessera.shared.keys); this module holds auth's table and its few-seconds cache."""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

import asyncpg

from tessera.auth.secrets import LegacySealed, new_token
from tessera.auth.signing_keys import queries
from tessera.shared import keys
from tessera.shared.keys import Sealer, SealingError, Signer, new_signer, open_signer

log = logging.getLogger("tessera.auth.tokens")


async def create_key(conn: asyncpg.Connection, sealer: Sealer) -> str:
    """Make a new active key, retiring the current one (the caller's transaction)."""
    signer = new_signer(kid=new_token(12))
    await queries.retire_active(conn)
    await queries.insert(conn, signer.kid, sealer.seal(signer.seed), signer.public_key)
    return signer.kid


async def reseal_legacy(conn: asyncpg.Connection, sealer: Sealer, legacy: LegacySealed) -> int:
    """Re-seal, with the kernel's sealer, every key still sealed the pre-kernel way (AES-GCM);
    the caller holds the keys lock. Returns how many were re-sealed."""
    count = 0
    for row in await queries.all_sealed(conn):
        sealed = bytes(row["private_key_encrypted"])
        try:
            sealer.open(sealed)
            continue
        except SealingError:
            seed = legacy.open(sealed, str(row["kid"]))
        if seed is None:
            raise SealingError(f"signing key {row['kid']} opens with neither sealing format")
        await queries.reseal(conn, str(row["kid"]), sealer.seal(seed))
        count += 1
    if count:
        log.info("auth.signing.keys_resealed", extra={"count": count})
    return count


async def ensure_key(pool: asyncpg.Pool, sealer: Sealer, legacy: LegacySealed | None = None) -> str:
    """The active key's kid, creating the first key on a fresh database; with `legacy`,
    first re-seal keys sealed the pre-kernel way (done at start-up)."""
    async with pool.acquire() as conn, conn.transaction():
        await queries.lock_keys(conn)
        if legacy is not None:
            await reseal_legacy(conn, sealer, legacy)
        row = await queries.active(conn)
        if row is not None:
            return str(row["kid"])
        return await create_key(conn, sealer)


async def rotate(pool: asyncpg.Pool, sealer: Sealer) -> str:
    """A new active key; the old one stays published until its tokens have expired."""
    async with pool.acquire() as conn, conn.transaction():
        await queries.lock_keys(conn)
        return await create_key(conn, sealer)


class KeyRingCache:
    """The kernel's key ring as a replica sees it, cached for a few seconds so that a token
    exchange costs no key query and a rotation by the CLI reaches every replica soon."""

    def __init__(
        self, pool: asyncpg.Pool, sealer: Sealer, *, token_ttl: int, cache_seconds: int
    ) -> None:
        self.pool = pool
        self.sealer = sealer
        self.cache_seconds = cache_seconds
        # A retired key is published while its tokens live, plus the seconds a replica may
        # keep signing with its cached key, plus the kernel's margin for clock skew.
        self.grace = timedelta(seconds=keys.publish_for(token_ttl, cache_seconds))
        self._ring: keys.KeyRing | None = None
        self._loaded_at = -1e9

    async def _load(self) -> keys.KeyRing:
        ring = self._ring
        if ring is not None and time.monotonic() - self._loaded_at < self.cache_seconds:
            return ring
        row = await queries.active(self.pool)
        if row is None:
            await ensure_key(self.pool, self.sealer)
            row = await queries.active(self.pool)
            assert row is not None
        signer = ring.signer if ring is not None else None
        if signer is None or signer.kid != row["kid"]:
            signer = open_signer(
                self.sealer,
                str(row["kid"]),
                bytes(row["private_key_encrypted"]),
                bytes(row["public_key"]),
            )
        rows = await queries.published(self.pool, self.grace)
        ring = keys.KeyRing(signer, keys.jwks((r["kid"], bytes(r["public_key"])) for r in rows))
        self._ring = ring
        self._loaded_at = time.monotonic()
        return ring

    async def active(self) -> Signer:
        return (await self._load()).signer

    async def jwks(self) -> dict[str, Any]:
        return (await self._load()).jwks
