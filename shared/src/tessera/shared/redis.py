"""Redis: a client per service, key prefixes per service (and namespace), and an atomic,
replica-safe rate limiter built on `limits` (a sliding window counter kept by one Lua
script)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.aio.storage import RedisStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from redis.asyncio import Redis

from tessera.shared.http.problems import RateLimited


def key_prefix(service: str, namespace: str = "") -> str:
    """`tessera:<service>:` (or `tessera:<namespace>:<service>:`): every key a service
    writes starts with it, so services and namespaces never collide."""
    return f"tessera:{namespace}:{service}:" if namespace else f"tessera:{service}:"


@dataclass(frozen=True)
class Keys:
    prefix: str

    def __call__(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)


def create_redis(url: str) -> Redis:
    return Redis.from_url(
        url,
        socket_connect_timeout=1.0,
        socket_timeout=1.0,
        health_check_interval=15,
        retry_on_timeout=False,
    )


def limits_uri(redis_url: str) -> str:
    return "async+" + redis_url


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after: int


class RateLimiter:
    """Counts hits per (rule, identifiers) in Redis; the check-and-count is one atomic
    script, so every replica shares the same budget."""

    def __init__(self, redis_url: str, prefix: str) -> None:
        self.storage = RedisStorage(
            limits_uri(redis_url), implementation="redispy", key_prefix=prefix + "rl"
        )
        # A sliding window counter: two counters per key and one atomic script, O(1) per hit
        # whatever the limit (a moving window keeps one entry per hit, which a generous limit
        # on a busy key turns into a slow list walk on every request).
        self.limiter = SlidingWindowCounterRateLimiter(self.storage)

    async def hit(self, rule: str | RateLimitItem, *identifiers: str) -> Decision:
        item = parse(rule) if isinstance(rule, str) else rule
        if await self.limiter.hit(item, *identifiers):
            return Decision(allowed=True, retry_after=0)
        return await self._refusal(item, *identifiers)

    async def peek(self, rule: str | RateLimitItem, *identifiers: str) -> Decision:
        """The decision a hit would get, without counting one (for budgets that only
        failures spend, e.g. wrong user codes)."""
        item = parse(rule) if isinstance(rule, str) else rule
        if await self.limiter.test(item, *identifiers):
            return Decision(allowed=True, retry_after=0)
        return await self._refusal(item, *identifiers)

    async def _refusal(self, item: RateLimitItem, *identifiers: str) -> Decision:
        # Only a refusal pays for the second round trip that finds when the window frees.
        stats = await self.limiter.get_window_stats(item, *identifiers)
        return Decision(
            allowed=False, retry_after=max(1, math.ceil(stats.reset_time - time.time()))
        )

    async def enforce(self, rule: str | RateLimitItem, *identifiers: str) -> Decision:
        """Count a hit; raise `RateLimited` (429 with Retry-After) when over the limit."""
        decision = await self.hit(rule, *identifiers)
        if not decision.allowed:
            raise RateLimited(decision.retry_after)
        return decision

    async def reset(self, rule: str | RateLimitItem, *identifiers: str) -> None:
        item = parse(rule) if isinstance(rule, str) else rule
        await self.limiter.clear(item, *identifiers)
