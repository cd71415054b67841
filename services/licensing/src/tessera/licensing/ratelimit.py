"""Rate limits for the desktop API: every rule of a request checked and counted in Redis by
one Lua script, atomically, and the requests of a busy moment share one round trip.

Requests that arrive while a round trip is in flight wait for it and then go together in
the next one, so under load each request costs a fraction of a Redis call (and at most
two round trips of latency), while every count stays exact and atomic across replicas.

A fixed window (the counter expires `window` after its first hit) rather than the shared
kernel's moving window, which costs a round trip per rule per request.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from tessera.shared.http.problems import RateLimited

log = logging.getLogger("tessera.licensing.ratelimit")

# KEYS: every counter of the batch, request by request.
# ARGV: window ms, number of requests, then per request: its number of counters followed by
# their limits. Returns, per request, 0 when allowed or the ms until its exhausted window
# resets.
SCRIPT = """
local window = ARGV[1]
local requests = tonumber(ARGV[2])
local out = {}
local k, pos = 1, 3
for r = 1, requests do
  local n = tonumber(ARGV[pos]); pos = pos + 1
  local refused = 0
  for _ = 1, n do
    local key = KEYS[k]; k = k + 1
    local limit = tonumber(ARGV[pos]); pos = pos + 1
    local count = redis.call('INCR', key)
    if count == 1 then redis.call('PEXPIRE', key, window) end
    if count > limit then
      local ttl = redis.call('PTTL', key)
      if ttl > refused then refused = ttl end
    end
  end
  out[r] = refused
end
return out
"""


@dataclass(frozen=True)
class Rule:
    name: str
    limit: int


@dataclass
class _Hit:
    keys: list[str]
    limits: list[int]
    answer: asyncio.Future[int]


class DesktopLimiter:
    def __init__(self, redis: Redis, prefix: str, window_seconds: int) -> None:
        self._script = redis.register_script(SCRIPT)
        self._prefix = prefix + "rl:"
        self._window_ms = str(window_seconds * 1000)
        self._waiting: list[_Hit] = []
        self._in_flight = False

    async def enforce(self, *hits: tuple[Rule, str]) -> None:
        """Count one hit per (rule, identifier); 429 with Retry-After when any is over.

        Fails open: a Redis outage must not stop every running copy of the app from
        validating (the limit protects Postgres, which still answers)."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiting.append(
            _Hit(
                [f"{self._prefix}{rule.name}:{ident}" for rule, ident in hits],
                [rule.limit for rule, _ in hits],
                future,
            )
        )
        if not self._in_flight:
            self._in_flight = True
            asyncio.get_running_loop().create_task(self._drain())
        refused = await future
        if refused > 0:
            retry_after = max(1, -(-refused // 1000))
            raise RateLimited(
                "Too many requests; try again later.",
                headers={"Retry-After": str(retry_after)},
                retry_after=retry_after,
            )

    async def _drain(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                await self._send(batch)
        finally:
            self._in_flight = False

    async def _send(self, batch: list[_Hit]) -> None:
        keys = [key for hit in batch for key in hit.keys]
        args: list[str | int] = [self._window_ms, len(batch)]
        for hit in batch:
            args.append(len(hit.keys))
            args.extend(hit.limits)
        try:
            results = [int(r) for r in await self._script(keys=keys, args=args)]
        except (RedisError, OSError) as error:
            log.warning("licensing.ratelimit.unavailable", extra={"error": repr(error)})
            results = [0] * len(batch)
        except BaseException:
            for hit in batch:
                if not hit.answer.done():
                    hit.answer.set_result(0)
            raise
        for hit, refused in zip(batch, results, strict=True):
            if not hit.answer.done():
                hit.answer.set_result(refused)
