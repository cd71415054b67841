"""validate (and heartbeat, its twin), once: a request in, the answer's bytes and signature
out.

Called by the route (the full stack) and by the fast path (desktop/fast_path.py), so both
hash the key, count the same limits, ask the same service and sign the same way. What is
missing (the read pool before start-up, the limiter, the signing keys) raises the
`ServiceUnavailable` the route renders as a 503; the fast path hands such a request on to
the full stack, which then answers it.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson

from tessera.licensing.context import Licensing
from tessera.licensing.desktop import service
from tessera.licensing.desktop.schemas import HeartbeatRequest, ValidateRequest
from tessera.licensing.desktop.signature import signature_header
from tessera.licensing.licenses import keyformat
from tessera.shared.http.problems import RateLimited
from tessera.shared.keys import Signer

PATH = "/v1/licenses/validate"
HEARTBEAT_PATH = "/v1/licenses/heartbeat"


@dataclass(frozen=True, slots=True)
class Signed:
    body: bytes
    signature: bytes


def key_id_of(key_hash: bytes) -> str:
    """The limiter's name for a key: part of its lookup hash, never the key itself."""
    return key_hash.hex()[:32]


async def validate(
    licensing: Licensing, req: ValidateRequest, ip: str, *, give_back: bool = False
) -> Signed:
    """The signed answer to `req` from `ip`. Raises `ServiceUnavailable` (no read pool,
    limiter or keys yet: the context's `NotConnected`) or `RateLimited` (nothing counted
    then). With `give_back`, the hits counted are taken back when the service fails, so the
    caller can hand the request to the full stack, which counts it itself."""

    async def work(pool: asyncpg.Pool, signer: Signer, key_hash: bytes) -> dict[str, Any]:
        return await service.validate(pool, licensing.cache, signer, req, key_hash)

    return await from_memory(licensing, PATH, req.key, ip, work, give_back)


async def heartbeat(
    licensing: Licensing, req: HeartbeatRequest, ip: str, *, give_back: bool = False
) -> Signed:
    """The signed answer to a heartbeat, as `validate` answers (the same limits count it)."""

    async def work(pool: asyncpg.Pool, signer: Signer, key_hash: bytes) -> dict[str, Any]:
        return await service.heartbeat(
            pool, licensing.cache, signer, licensing.heartbeats, req, key_hash
        )

    return await from_memory(licensing, HEARTBEAT_PATH, req.key, ip, work, give_back)


Work = Callable[[asyncpg.Pool, Signer, bytes], Awaitable[dict[str, Any]]]


async def from_memory(
    licensing: Licensing, path: str, key: str, ip: str, work: Work, give_back: bool
) -> Signed:
    pool, ring, limiter = licensing.read_pool, licensing.ring, licensing.synced_limiter
    key_hash = keyformat.lookup_hash(key)
    hits = ((licensing.per_ip, ip), (licensing.per_key, key_id_of(key_hash)))
    retry_after = limiter.hit(*hits).retry_after
    if retry_after:
        raise RateLimited(retry_after)
    try:
        result = await work(pool, ring.signer, key_hash)
    except Exception:
        if give_back:
            limiter.undo(*hits)
        raise
    body = orjson.dumps(result)
    return Signed(body, signature_header(ring.signer, "POST", path, body, time.time()))
