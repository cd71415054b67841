"""Device codes and refresh tokens in Redis, each state change one Lua script.

`dev:code:<HMAC(device code)>`: the grant (client, status, poll interval and last accepted
poll, who approved). It outlives its expiry by a while so that a late poll hears
`expired_token` rather than `invalid_grant`. `dev:user:<HMAC(user code)>` points at it
while it can still be approved. `rt:<HMAC(refresh token)>`: one refresh token of a family
(= a device session `sess:<family>`), live or spent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from tessera.auth.sessions.store import decode
from tessera.shared.redis import Keys

TOMBSTONE_SECONDS = 600

_LOAD = """
local function load(key)
  local raw = redis.call('HGETALL', key)
  if #raw == 0 then return nil end
  local r = {}
  for i = 1, #raw, 2 do r[raw[i]] = raw[i + 1] end
  return r
end
"""

POLL = (
    _LOAD
    + """
local r = load(KEYS[1])
local now = tonumber(ARGV[1])
if not r or r['client_id'] ~= ARGV[2] then return {'invalid_grant'} end
if now >= tonumber(r['expires_at']) then return {'expired_token'} end
if r['status'] == 'denied' then return {'access_denied'} end
local interval = tonumber(r['interval'])
if now - tonumber(r['last_poll']) < interval then
  redis.call('HSET', KEYS[1], 'interval', interval + tonumber(ARGV[3]))
  return {'slow_down'}
end
redis.call('HSET', KEYS[1], 'last_poll', ARGV[1])
if r['status'] ~= 'approved' then return {'authorization_pending'} end
redis.call('DEL', KEYS[1])
return {'ok', r['user_id'], r['client_version']}
"""
)

DECIDE = (
    _LOAD
    + """
local code = redis.call('GET', KEYS[1])
if not code then return {'unknown'} end
local key = ARGV[1] .. code
local r = load(key)
if not r or r['status'] ~= 'pending' or tonumber(ARGV[2]) >= tonumber(r['expires_at']) then
  return {'unknown'}
end
redis.call('HSET', key, 'status', ARGV[3], 'user_id', ARGV[4])
redis.call('DEL', KEYS[1])
return {'ok'}
"""
)

# Rotate a refresh token. Returns ok (the new token is live), or reuse (the family was
# revoked: a spent token came back after the grace), or invalid.
ROTATE = (
    _LOAD
    + """
local r = load(KEYS[1])
if not r or r['client_id'] ~= ARGV[5] then return {'invalid'} end
local family = ARGV[1] .. 'sess:' .. r['family']
local current = redis.call('HGET', family, 'rt')
if not current then return {'invalid'} end
local now = tonumber(ARGV[2])
local function issue()
  local new = ARGV[1] .. 'rt:' .. ARGV[3]
  redis.call('HSET', new, 'family', r['family'], 'user_id', r['user_id'],
             'client_id', r['client_id'], 'state', 'live', 'self', ARGV[3])
  redis.call('PEXPIREAT', new, math.ceil(tonumber(redis.call('HGET', family, 'expires_at')) * 1000))
  redis.call('HSET', KEYS[1], 'state', 'spent', 'spent_at', ARGV[2], 'successor', ARGV[3])
  redis.call('HSET', family, 'rt', ARGV[3], 'last_seen_at', ARGV[2], 'ip', ARGV[6])
  return {'ok', r['user_id'], r['family']}
end
if r['state'] == 'live' and current == r['self'] then return issue() end
if r['state'] == 'spent' and now - tonumber(r['spent_at']) <= tonumber(ARGV[4])
   and r['successor'] == current then
  -- The response carrying the successor was lost; the successor was never used.
  redis.call('DEL', ARGV[1] .. 'rt:' .. current)
  return issue()
end
local handle = redis.call('HGET', family, 'handle')
redis.call('DEL', family)
return {'reuse', r['user_id'], handle or ''}
"""
)


def _strs(raw: list[Any]) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in raw]


@dataclass(frozen=True)
class Grant:
    client_id: str
    client_version: str
    ip: str
    created_at: float
    expires_at: float


class DeviceStore:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self._poll = redis.register_script(POLL)
        self._decide = redis.register_script(DECIDE)
        self._rotate = redis.register_script(ROTATE)

    def code_key(self, code_hash: str) -> str:
        return self.keys("dev", "code", code_hash)

    def user_key(self, user_hash: str) -> str:
        return self.keys("dev", "user", user_hash)

    async def create(
        self, code_hash: str, user_hash: str, *, ttl: int, fields: dict[Any, Any]
    ) -> bool:
        """Store a new grant; False if the user code is taken (the caller draws again)."""
        if not await self.redis.set(self.user_key(user_hash), code_hash, ex=ttl, nx=True):
            return False
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.code_key(code_hash), mapping=fields)
            pipe.expire(self.code_key(code_hash), ttl + TOMBSTONE_SECONDS)
            await pipe.execute()
        return True

    async def poll(self, code_hash: str, client_id: str, now: float, step: int) -> list[str]:
        return _strs(await self._poll(keys=[self.code_key(code_hash)], args=[now, client_id, step]))

    async def pending(self, user_hash: str, now: float) -> Grant | None:
        code_hash = await self.redis.get(self.user_key(user_hash))
        if code_hash is None:
            return None
        data = decode(await self.redis.hgetall(self.code_key(_strs([code_hash])[0])))
        if not data or data.get("status") != "pending" or now >= float(data["expires_at"]):
            return None
        return Grant(
            client_id=data["client_id"],
            client_version=data.get("client_version", ""),
            ip=data.get("ip", ""),
            created_at=float(data["created_at"]),
            expires_at=float(data["expires_at"]),
        )

    async def decide(self, user_hash: str, now: float, status: str, user_id: str) -> bool:
        result = await self._decide(
            keys=[self.user_key(user_hash)],
            args=[self.keys("dev", "code", ""), now, status, user_id],
        )
        return _strs(result)[0] == "ok"

    async def add_refresh(
        self, token_hash: str, family: str, user_id: str, client_id: str, ttl: int
    ) -> None:
        key = self.keys("rt", token_hash)
        async with self.redis.pipeline(transaction=True) as pipe:
            record: dict[Any, Any] = {
                "family": family,
                "user_id": user_id,
                "client_id": client_id,
                "state": "live",
                "self": token_hash,
            }
            pipe.hset(key, mapping=record)
            pipe.expire(key, ttl)
            pipe.hset(self.keys("sess", family), "rt", token_hash)
            await pipe.execute()

    async def rotate(
        self, token_hash: str, new_hash: str, *, now: float, grace: int, client_id: str, ip: str
    ) -> list[str]:
        raw = await self._rotate(
            keys=[self.keys("rt", token_hash)],
            args=[self.keys(), now, new_hash, grace, client_id, ip],
        )
        return _strs(raw)
