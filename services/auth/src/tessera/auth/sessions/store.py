"""Sessions in Redis.

`sess:<key>` is a hash of the session's metadata, where <key> is HMAC(session id) for a
browser session and a random family id for a device session; its TTL is the idle timeout
(never past the absolute one). `user-sessions:<user id>` maps each public handle (what
lists and revokes name) to its <key>. Handles are random: they reveal nothing of the id.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from redis.asyncio import Redis

from tessera.shared.redis import Keys

# Touch only a session that still exists (a concurrent revoke must not be undone by a
# late touch re-creating the hash), and only until its absolute expiry.
TOUCH = """
local expires_at = tonumber(redis.call('HGET', KEYS[1], 'expires_at'))
if not expires_at then return nil end
local now = tonumber(ARGV[1])
if now >= expires_at then
  redis.call('DEL', KEYS[1])
  return nil
end
redis.call('HSET', KEYS[1], 'last_seen_at', ARGV[1], 'ip', ARGV[2])
local idle = tonumber(ARGV[3])
local ttl = math.min(idle, expires_at - now)
redis.call('PEXPIRE', KEYS[1], math.ceil(ttl * 1000))
return redis.call('HGETALL', KEYS[1])
"""

# Create a session and index it in one step. The index lives as long as its longest-lived
# session: its expiry only ever grows (what `EXPIRE ... GT` does, written out so the script
# runs on Redis 6.2 too, e.g. the embedded server of `./dev up --embedded`).
# (The index is written first: a script is not rolled back, and only that write can fail.)
CREATE = """
redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
local absolute = tonumber(ARGV[2])
if redis.call('TTL', KEYS[2]) < absolute then redis.call('EXPIRE', KEYS[2], absolute) end
redis.call('HSET', KEYS[1], unpack(ARGV, 5))
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[1]))
return 1
"""


@dataclass(frozen=True)
class SessionRecord:
    key: str
    handle: str
    user_id: UUID
    kind: str
    created_at: float
    last_seen_at: float
    expires_at: float
    ip: str
    device: str
    client_id: str
    client_name: str
    client_version: str

    @classmethod
    def of(cls, key: str, data: dict[str, str]) -> SessionRecord:
        return cls(
            key=key,
            handle=data["handle"],
            user_id=UUID(data["user_id"]),
            kind=data.get("kind", "browser"),
            created_at=float(data["created_at"]),
            last_seen_at=float(data.get("last_seen_at", data["created_at"])),
            expires_at=float(data["expires_at"]),
            ip=data.get("ip", ""),
            device=data.get("device", ""),
            client_id=data.get("client_id", ""),
            client_name=data.get("client_name", ""),
            client_version=data.get("client_version", ""),
        )


def decode(raw: Any) -> dict[str, str]:
    if isinstance(raw, dict):
        return {_s(k): _s(v) for k, v in raw.items()}
    items = [_s(x) for x in raw]
    return dict(zip(items[::2], items[1::2], strict=True))


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class SessionStore:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self._touch = redis.register_script(TOUCH)
        self._create = redis.register_script(CREATE)

    def _sess(self, key: str) -> str:
        return self.keys("sess", key)

    def _index(self, user_id: UUID) -> str:
        return self.keys("user-sessions", str(user_id))

    async def create(
        self,
        key: str,
        handle: str,
        user_id: UUID,
        *,
        kind: str,
        ttl: int,
        absolute: int,
        ip: str,
        device: str,
        **extra: str,
    ) -> None:
        now = time.time()
        fields: dict[Any, Any] = {
            "handle": handle,
            "user_id": str(user_id),
            "kind": kind,
            "created_at": repr(now),
            "last_seen_at": repr(now),
            "expires_at": repr(now + absolute),
            "ip": ip,
            "device": device,
            **extra,
        }
        flat = [x for pair in fields.items() for x in pair]
        await self._create(
            keys=[self._sess(key), self._index(user_id)],
            args=[min(ttl, absolute), absolute, handle, key, *flat],
        )

    async def touch(self, key: str, *, ip: str, idle: int) -> SessionRecord | None:
        raw = await self._touch(keys=[self._sess(key)], args=[repr(time.time()), ip, idle])
        return SessionRecord.of(key, decode(raw)) if raw else None

    async def get(self, key: str) -> SessionRecord | None:
        raw = await self.redis.hgetall(self._sess(key))
        return SessionRecord.of(key, decode(raw)) if raw else None

    async def list_for(self, user_id: UUID) -> list[SessionRecord]:
        index = decode(await self.redis.hgetall(self._index(user_id)))
        if not index:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in index.values():
                pipe.hgetall(self._sess(key))
            raws = await pipe.execute()
        records, gone = [], []
        for (handle, key), raw in zip(index.items(), raws, strict=True):
            if raw:
                records.append(SessionRecord.of(key, decode(raw)))
            else:
                gone.append(handle)
        if gone:  # expired sessions leave their index entry behind; tidy it here
            await self.redis.hdel(self._index(user_id), *gone)
        return sorted(records, key=lambda r: r.created_at, reverse=True)

    async def key_of(self, user_id: UUID, handle: str) -> str | None:
        key = await self.redis.hget(self._index(user_id), handle)
        return _s(key) if key is not None else None

    async def alive(self, user_id: UUID, handle: str) -> bool:
        key = await self.key_of(user_id, handle)
        return key is not None and bool(await self.redis.exists(self._sess(key)))

    async def delete(self, user_id: UUID, handle: str) -> bool:
        key = await self.key_of(user_id, handle)
        if key is None:
            return False
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._sess(key))
            pipe.hdel(self._index(user_id), handle)
            deleted, _ = await pipe.execute()
        return bool(deleted)

    async def delete_all(self, user_id: UUID, keep: str | None = None) -> list[str]:
        """Delete every session of the user (but `keep`, a handle); returns the handles."""
        index = decode(await self.redis.hgetall(self._index(user_id)))
        doomed = {h: k for h, k in index.items() if h != keep}
        if not doomed:
            return []
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(*[self._sess(k) for k in doomed.values()])
            pipe.hdel(self._index(user_id), *doomed)
            await pipe.execute()
        return list(doomed)
