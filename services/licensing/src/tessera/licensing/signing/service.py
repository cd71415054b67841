"""Signing-key verbs: make sure a key signs, rotate it, sign the key set with the root(s),
and keep each replica's ring fresh.

The trust chain (docs/licensing-client.md, "Trust"): the desktop app pins the seller's root
public key(s); a root signs the *key set* (the lease-signing public keys, a monotonic
`version`, `iat`, `exp`); the lease-signing keys sign leases and answers. A root is either
sealed in `root_keys` (this process re-signs the set itself whenever the lease keys change or
half its lifetime has passed) or offline (its private half in a file the operator keeps; the
set is signed with `tessera-licensing keys sign-set --root-key FILE`)."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import asyncpg

from tessera.licensing.signing import queries
from tessera.licensing.signing.keyset import KEY_SET_TYPE, key_set_claims
from tessera.shared import keys
from tessera.shared.keys import Sealer, Signer, new_signer, open_signer, public_jwk

log = logging.getLogger("tessera.licensing.signing")


@dataclass
class KeyRing(keys.KeyRing):
    """The kernel's ring (the lease key signing now, the lease keys published), with the key
    set that vouches for them."""

    # The latest signed key set: one compact JWS per root that signed it.
    key_sets: list[str] = field(default_factory=list)
    # The public halves of the roots not retired (for operators; an app pins them at build
    # time and never takes them from the network).
    roots: list[dict[str, str]] = field(default_factory=list)
    set_version: int = 0
    set_kids: frozenset[str] = frozenset()
    set_expires_at: float = 0.0

    def published(self) -> dict[str, Any]:
        """The body of GET /v1/public-keys."""
        return {**self.jwks, "key_sets": self.key_sets, "roots": self.roots}


class NoRootError(RuntimeError):
    """No root can sign the key set: none sealed here and no --root-key given."""


async def _create_key(conn: asyncpg.Connection, sealer: Sealer) -> Signer:
    signer = new_signer()
    await queries.insert_key(conn, signer.kid, signer.public_key, sealer.seal(signer.seed))
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
    pool: asyncpg.Pool,
    sealer: Sealer,
    replica_lag_seconds: float,
    set_lifetime_seconds: float,
    offline_roots: tuple[Signer, ...] = (),
) -> tuple[str, str | None, int]:
    """A new key signs from now on; the old one stays published until its last lease (and any
    a lagging replica signs before it notices) has expired. The new key set naming both is
    signed in the same transaction (by the sealed roots and `offline_roots`), so no replica
    ever signs with a key that no set lists. Returns (new kid, old kid, set version)."""
    async with pool.acquire() as conn, conn.transaction():
        await queries.lock_keys(conn)
        longest = await queries.longest_lease_seconds(conn)
        old = await queries.retire_current(conn, keys.publish_for(longest, replica_lag_seconds))
        signer = await _create_key(conn, sealer)
        version = await sign_set(conn, sealer, set_lifetime_seconds, offline_roots)
    log.info(
        "licensing.signing.key_rotated",
        extra={"kid": signer.kid, "retired": old, "key_set_version": version},
    )
    return signer.kid, old, version


async def create_root(pool: asyncpg.Pool, sealer: Sealer, *, sealed: bool) -> Signer:
    """A new root. Sealed: kept here (sealed with the KEK) and signing from the next set on.
    Not sealed: only its public half is recorded; the caller hands the private half to the
    operator (and it signs only when given back with --root-key)."""
    root = new_signer()
    async with pool.acquire() as conn, conn.transaction():
        await queries.lock_keys(conn)
        private = sealer.seal(root.seed) if sealed else None
        await queries.insert_root(conn, root.kid, root.public_key, private)
    log.info("licensing.signing.root_created", extra={"kid": root.kid, "sealed": sealed})
    return root


async def ensure_root(pool: asyncpg.Pool, sealer: Sealer) -> None:
    """Dev and single-box: a sealed root if there is no root at all."""
    async with pool.acquire() as conn, conn.transaction():
        await queries.lock_keys(conn)
        if await queries.active_roots(conn):
            return
        root = new_signer()
        await queries.insert_root(conn, root.kid, root.public_key, sealer.seal(root.seed))
    log.info("licensing.signing.root_created", extra={"kid": root.kid, "sealed": True})


async def sealed_roots(pool: asyncpg.Pool) -> list[str]:
    """The kids of the active roots sealed in this database (which sign every set)."""
    async with pool.acquire() as conn:
        return [str(r["kid"]) for r in await queries.active_roots(conn) if r["private_sealed"]]


async def retire_root(pool: asyncpg.Pool, kid: str) -> bool:
    """The root signs no further set (sets it signed stay valid until they expire)."""
    async with pool.acquire() as conn, conn.transaction():
        await queries.lock_keys(conn)
        return await queries.retire_root(conn, kid)


async def sign_set(
    conn: asyncpg.Connection,
    sealer: Sealer,
    lifetime_seconds: float,
    offline_roots: tuple[Signer, ...] = (),
    at_least: int = 0,
) -> int:
    """Sign a new key set (the published lease keys, the next version) with every sealed root
    not retired and every root in `offline_roots`. The caller holds the keys lock. Returns the
    version; NoRootError when no root can sign (the transaction must roll back)."""
    signers: dict[str, Signer] = {}
    for row in await queries.active_roots(conn):
        if row["private_sealed"] is not None:
            kid = str(row["kid"])
            signers[kid] = open_signer(
                sealer, kid, bytes(row["private_sealed"]), bytes(row["public_key"])
            )
    active = {str(r["kid"]) for r in await queries.active_roots(conn)}
    for root in offline_roots:
        if root.kid not in active:
            # A root the operator brings for the first time is recorded by its public half;
            # a retired one is refused.
            known = {str(r["kid"]) for r in await queries.all_roots(conn)}
            if root.kid in known:
                raise NoRootError(f"root {root.kid} is retired")
            await queries.insert_root(conn, root.kid, root.public_key, None)
        signers[root.kid] = root
    # Every active root signs every set: a set without an offline root's signature would be
    # refused by builds that pin only that root. To stop a root signing, retire it.
    missing = sorted(active - signers.keys())
    if missing:
        raise NoRootError(f"root {missing[0]} is offline: pass its --root-key FILE (or retire it)")
    if not signers:
        raise NoRootError(
            "no root can sign the key set: none is sealed here; "
            "pass --root-key FILE (see `tessera-licensing keys root-create`)"
        )
    published = await queries.published_keys(conn)
    jwks = keys.jwks((str(r["kid"]), bytes(r["public_key"])) for r in published)["keys"]
    version = max(await queries.next_set_version(conn), at_least)
    iat = int(time.time())
    exp = iat + int(lifetime_seconds)
    claims = key_set_claims(version, iat, exp, jwks)
    kids = [k["kid"] for k in jwks]
    for kid, root in sorted(signers.items()):
        await queries.insert_key_set(
            conn,
            version,
            kid,
            root.jws_typed(claims, KEY_SET_TYPE),
            kids,
            datetime.fromtimestamp(iat, UTC),
            datetime.fromtimestamp(exp, UTC),
        )
    log.info(
        "licensing.signing.key_set_signed",
        extra={"version": version, "roots": sorted(signers), "kids": kids},
    )
    return version


async def sign_set_now(
    pool: asyncpg.Pool,
    sealer: Sealer,
    lifetime_seconds: float,
    offline_roots: tuple[Signer, ...] = (),
    at_least: int = 0,
) -> int:
    """`keys sign-set`: make sure a lease key exists, then sign a new set (its version at
    least `at_least`: after restoring an old backup, above what apps have already seen)."""
    await ensure_key(pool, sealer)
    async with pool.acquire() as conn, conn.transaction():
        await queries.lock_keys(conn)
        return await sign_set(conn, sealer, lifetime_seconds, offline_roots, at_least)


def _stale(
    kids: frozenset[str], expires_at: float, published: frozenset[str], lifetime: float
) -> bool:
    return kids != published or expires_at - time.time() < lifetime / 2


async def refresh_set(pool: asyncpg.Pool, sealer: Sealer, lifetime_seconds: float) -> int | None:
    """When every active root is sealed here: sign a new set when the lease keys changed (a
    key retired past its publication, a rotation), a root has not signed the latest set, or
    less than half the set's lifetime is left. With an offline root the operator signs (and
    nothing happens here). Returns the new version, if any."""
    async with pool.acquire() as conn:
        if not await _sealed_root_and_stale(conn, lifetime_seconds):
            return None
        async with conn.transaction():
            await queries.lock_keys(conn)
            if not await _sealed_root_and_stale(conn, lifetime_seconds):
                return None
            return await sign_set(conn, sealer, lifetime_seconds)


async def _sealed_root_and_stale(conn: asyncpg.Connection, lifetime: float) -> bool:
    roots = await queries.active_roots(conn)
    # Only when every active root is sealed here can this process sign a complete set.
    if not roots or any(r["private_sealed"] is None for r in roots):
        return False
    published = frozenset(str(r["kid"]) for r in await queries.published_keys(conn))
    latest = await queries.latest_key_sets(conn)
    if not latest:
        return True
    signed_by = {str(r["root_kid"]) for r in latest}
    sealed = {str(r["kid"]) for r in roots if r["private_sealed"] is not None}
    kids = frozenset(latest[0]["kids"])
    return not sealed <= signed_by or _stale(
        kids, latest[0]["expires_at"].timestamp(), published, lifetime
    )


async def load_ring(pool: asyncpg.Pool, sealer: Sealer) -> KeyRing:
    async with pool.acquire() as conn:
        row = await queries.current_key(conn)
        published = await queries.published_keys(conn)
        sets = await queries.latest_key_sets(conn)
        roots = await queries.active_roots(conn)
    if row is None:
        raise RuntimeError("no current signing key; run `tessera-licensing keys rotate`")
    signer = open_signer(
        sealer, str(row["kid"]), bytes(row["private_sealed"]), bytes(row["public_key"])
    )
    if sets and signer.kid not in sets[0]["kids"]:
        log.error(
            "licensing.signing.key_not_in_set",
            extra={"kid": signer.kid, "version": sets[0]["version"]},
        )
    return KeyRing(
        signer=signer,
        jwks=keys.jwks((str(r["kid"]), bytes(r["public_key"])) for r in published),
        key_sets=[str(r["jws"]) for r in sets],
        roots=[public_jwk(str(r["kid"]), bytes(r["public_key"])) for r in roots],
        set_version=int(sets[0]["version"]) if sets else 0,
        set_kids=frozenset(sets[0]["kids"]) if sets else frozenset(),
        set_expires_at=sets[0]["expires_at"].timestamp() if sets else 0.0,
    )


class RingHolder(Protocol):
    """Whoever holds the ring in use (licensing's context)."""

    loaded_ring: KeyRing | None


async def keep_fresh(
    holder: RingHolder, pool: asyncpg.Pool, sealer: Sealer, every: float, set_lifetime: float
) -> None:
    """Every `every` seconds: re-sign the key set if a sealed root should (see refresh_set),
    and re-read the ring so an operator's rotation or new set reaches this replica."""
    while True:
        await asyncio.sleep(every)
        try:
            ring = holder.loaded_ring
            if ring is None or _stale(ring.set_kids, ring.set_expires_at, ring.kids, set_lifetime):
                await refresh_set(pool, sealer, set_lifetime)
            holder.loaded_ring = await load_ring(pool, sealer)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # keep the ring we have; Postgres may be briefly away
            log.warning("licensing.signing.refresh_failed", extra={"error": repr(error)})


async def list_keys(
    pool: asyncpg.Pool,
) -> tuple[list[asyncpg.Record], list[asyncpg.Record], list[asyncpg.Record]]:
    """(lease keys, roots, the latest set's signatures)."""
    async with pool.acquire() as conn:
        return (
            await queries.all_keys(conn),
            await queries.all_roots(conn),
            await queries.latest_key_sets(conn),
        )
