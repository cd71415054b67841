"""The signing keys: create, rotate, load (decrypting), and publish as a JWKS."""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from tessera.auth.secrets import Sealer, new_token
from tessera.auth.signing_keys import queries

# Added to the access-token lifetime before a retired key leaves the JWKS: verifiers accept
# 30 s of clock skew, and a replica may sign with a key it cached for a few seconds more.
PUBLISH_MARGIN_SECONDS = 60


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: Ed25519PrivateKey


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def public_jwk(kid: str, public: bytes) -> dict[str, str]:
    return {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": b64url(public),
        "kid": kid,
        "alg": "EdDSA",
        "use": "sig",
    }


async def create_key(conn: asyncpg.Connection, sealer: Sealer) -> str:
    """Make a new active key, retiring the current one (the caller's transaction)."""
    private = Ed25519PrivateKey.generate()
    raw = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    kid = new_token(12)
    await queries.retire_active(conn)
    await queries.insert(conn, kid, sealer.seal(raw, kid.encode()), public)
    return kid


async def ensure_key(pool: asyncpg.Pool, sealer: Sealer) -> str:
    """The active key's kid, creating the first key on a fresh database."""
    async with pool.acquire() as conn, conn.transaction():
        await queries.lock_keys(conn)
        row = await queries.active(conn)
        if row is not None:
            return str(row["kid"])
        return await create_key(conn, sealer)


async def rotate(pool: asyncpg.Pool, sealer: Sealer) -> str:
    """A new active key; the old one stays published until its tokens have expired."""
    async with pool.acquire() as conn, conn.transaction():
        await queries.lock_keys(conn)
        return await create_key(conn, sealer)


class KeyRing:
    """What a replica signs with and publishes, cached for a few seconds so that a token
    exchange costs no key query and a rotation by the CLI reaches every replica soon."""

    def __init__(
        self, pool: asyncpg.Pool, sealer: Sealer, *, token_ttl: int, cache_seconds: int
    ) -> None:
        self.pool = pool
        self.sealer = sealer
        self.cache_seconds = cache_seconds
        self.grace = timedelta(seconds=token_ttl + cache_seconds + PUBLISH_MARGIN_SECONDS)
        self._active: SigningKey | None = None
        self._jwks: dict[str, Any] = {"keys": []}
        self._loaded_at = -1e9

    async def _load(self) -> None:
        if time.monotonic() - self._loaded_at < self.cache_seconds and self._active is not None:
            return
        row = await queries.active(self.pool)
        if row is None:
            await ensure_key(self.pool, self.sealer)
            row = await queries.active(self.pool)
            assert row is not None
        if self._active is None or self._active.kid != row["kid"]:
            raw = self.sealer.open(bytes(row["private_key_encrypted"]), row["kid"].encode())
            self._active = SigningKey(row["kid"], Ed25519PrivateKey.from_private_bytes(raw))
        rows = await queries.published(self.pool, self.grace)
        self._jwks = {"keys": [public_jwk(r["kid"], bytes(r["public_key"])) for r in rows]}
        self._loaded_at = time.monotonic()

    async def active(self) -> SigningKey:
        await self._load()
        assert self._active is not None
        return self._active

    async def jwks(self) -> dict[str, Any]:
        await self._load()
        return self._jwks
