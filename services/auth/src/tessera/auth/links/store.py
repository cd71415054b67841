"""Links in Redis.

`ml:tok:<HMAC(token)>` is the live link (address, user, browser binding, `next`, the
code's hash, wrong tries); `ml:addr:<HMAC(address)>` points at the address's one live link,
so a newer link replaces the older one. Every check-and-consume is one Lua script: two
concurrent verifies of one link cannot both win, and a wrong code is counted atomically.
A link consumed by a sign-in that then fails (the user or the session could not be
written) is put back as it was (`restore`), so the person can simply try again.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from redis.asyncio import Redis

from tessera.auth.context import Auth
from tessera.auth.sessions.store import decode
from tessera.shared.redis import Keys
from tessera.shared.sellers import HOME_LIVE, Tenant

ISSUE = """
local old = redis.call('GET', KEYS[2])
if old then redis.call('DEL', ARGV[1] .. old) end
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
redis.call('SET', KEYS[2], ARGV[2], 'EX', tonumber(ARGV[3]))
return 1
"""

# Shared tail of both consumers: drop the link and its address pointer.
_FORGET = """
local function forget(r)
  redis.call('DEL', KEYS[1])
  local ptr = ARGV[1] .. 'ml:addr:' .. r['addr']
  if redis.call('GET', ptr) == r['self'] then redis.call('DEL', ptr) end
end
local function raw()
  return redis.call('HGETALL', KEYS[1])
end
local function load()
  local fields = raw()
  if #fields == 0 then return nil end
  local r = {}
  for i = 1, #fields, 2 do r[fields[i]] = fields[i + 1] end
  return r
end
"""

CONSUME_BOUND = (
    _FORGET
    + """
local r = load()
if not r then return {'invalid'} end
if r['binding'] ~= '' and r['binding'] ~= ARGV[2] then return {'code_required'} end
local ttl = redis.call('PTTL', KEYS[1])
local record = raw()
forget(r)
return {'ok', r['email'], r['user_id'], r['next'], r['addr'], ttl, unpack(record)}
"""
)

CONSUME_CODE = (
    _FORGET
    + """
local r = load()
if not r then return {'invalid'} end
local fails_key = ARGV[1] .. 'ml:fails:' .. r['addr']
if tonumber(redis.call('GET', fails_key) or '0') >= tonumber(ARGV[4]) then
  return {'invalid', r['addr']}
end
if r['code'] == ARGV[2] then
  local ttl = redis.call('PTTL', KEYS[1])
  local record = raw()
  forget(r)
  return {'ok', r['email'], r['user_id'], r['next'], r['addr'], ttl, unpack(record)}
end
if redis.call('INCR', fails_key) == 1 then redis.call('EXPIRE', fails_key, 3600) end
if redis.call('HINCRBY', KEYS[1], 'attempts', 1) >= tonumber(ARGV[3]) then forget(r) end
return {'invalid', r['addr']}
"""
)

# Put a consumed link back as it was (the sign-in it was consumed for failed), unless a newer
# link for the address replaced it meanwhile or its time ran out. The code's wrong tries
# stay counted: only the link itself comes back.
RESTORE = """
local ttl = tonumber(ARGV[2])
if ttl <= 0 or redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local current = redis.call('GET', KEYS[2])
if current and current ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('SET', KEYS[2], ARGV[1], 'PX', ttl)
return 1
"""


@dataclass(frozen=True)
class Consumed:
    outcome: str  # ok | invalid | code_required
    email: str = ""
    user_id: str = ""
    next: str = ""
    addr: str = ""
    # What `restore` needs to put a consumed link back: its record and when it would have
    # expired (monotonic clock).
    record: tuple[str, ...] = ()
    expires: float = 0.0

    @property
    def fields(self) -> dict[str, str]:
        return dict(zip(self.record[::2], self.record[1::2], strict=True))

    @property
    def tenant(self) -> Tenant:
        """Whose link it is; a link minted before sellers is the home seller's, live."""
        fields = self.fields
        if not fields.get("seller_id"):
            return HOME_LIVE
        return Tenant(UUID(fields["seller_id"]), "test" if fields.get("mode") == "test" else "live")

    @property
    def purpose(self) -> str:
        return self.fields.get("purpose") or "sign_in"

    @property
    def data(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.fields.get("data") or "{}")
        return loaded

    @classmethod
    def of(cls, raw: list[Any]) -> Consumed:
        parts = [v.decode() if isinstance(v, bytes) else str(v) for v in raw]
        if parts[0] != "ok":
            return cls(parts[0], addr=parts[1] if len(parts) > 1 else "")
        return cls(
            "ok",
            email=parts[1],
            user_id=parts[2],
            next=parts[3],
            addr=parts[4],
            expires=time.monotonic() + int(parts[5]) / 1000,
            record=tuple(parts[6:]),
        )


class LinkStore:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self._issue = redis.register_script(ISSUE)
        self._bound = redis.register_script(CONSUME_BOUND)
        self._code = redis.register_script(CONSUME_CODE)
        self._restore = redis.register_script(RESTORE)

    def _tok(self, token_hash: str) -> str:
        return self.keys("ml", "tok", token_hash)

    def _addr(self, addr: str) -> str:
        return self.keys("ml", "addr", addr)

    async def issue(self, token_hash: str, addr: str, ttl: int, fields: dict[str, str]) -> None:
        record = {**fields, "addr": addr, "self": token_hash, "attempts": "0"}
        flat = [x for pair in record.items() for x in pair]
        await self._issue(
            keys=[self._tok(token_hash), self._addr(addr)],
            args=[self.keys("ml", "tok", ""), token_hash, ttl, *flat],
        )

    async def current(self, addr: str) -> str | None:
        value = await self.redis.get(self._addr(addr))
        return value.decode() if isinstance(value, bytes) else value

    async def consume_bound(self, token_hash: str, binding: str) -> Consumed:
        raw = await self._bound(keys=[self._tok(token_hash)], args=[self.keys(), binding])
        return Consumed.of(raw)

    async def consume_code(
        self, token_hash: str, code_hash: str, per_code: int, per_account: int
    ) -> Consumed:
        raw = await self._code(
            keys=[self._tok(token_hash)], args=[self.keys(), code_hash, per_code, per_account]
        )
        return Consumed.of(raw)

    async def restore(self, consumed: Consumed) -> bool:
        """Make a link consumed by a sign-in that then failed usable again (see RESTORE)."""
        record = consumed.fields
        token_hash = record.get("self", "")
        ttl_ms = int((consumed.expires - time.monotonic()) * 1000)
        if not token_hash or ttl_ms <= 0:
            return False
        restored = await self._restore(
            keys=[self._tok(token_hash), self._addr(consumed.addr)],
            args=[token_hash, ttl_ms, *consumed.record],
        )
        return bool(restored)

    async def exists(self, token_hash: str) -> bool:
        return bool(await self.redis.exists(self._tok(token_hash)))

    async def record(self, token_hash: str) -> dict[str, str]:
        return decode(await self.redis.hgetall(self._tok(token_hash)))


def link_store(auth: Auth) -> LinkStore:
    return LinkStore(auth.redis, auth.keys)
