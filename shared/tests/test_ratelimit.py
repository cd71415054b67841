"""The rate limiter against real Redis: atomic under concurrency, shared by replicas."""

import asyncio

import pytest
from redis.asyncio import Redis

from tessera.shared.http.problems import RateLimited
from tessera.shared.redis import RateLimiter, key_prefix

pytestmark = pytest.mark.integration


@pytest.fixture
def limiter(namespace: str, redis: Redis, redis_url: str) -> RateLimiter:
    return RateLimiter(redis_url, key_prefix("test", namespace))


async def test_hits_past_the_limit_are_refused_with_retry_after(limiter: RateLimiter) -> None:
    for _ in range(3):
        await limiter.enforce("3/minute", "ip", "203.0.113.9")
    with pytest.raises(RateLimited) as raised:
        await limiter.enforce("3/minute", "ip", "203.0.113.9")
    retry_after = int(raised.value.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    other = await limiter.hit("3/minute", "ip", "198.51.100.1")
    assert other.allowed


async def test_a_peek_refuses_a_full_window_without_counting(limiter: RateLimiter) -> None:
    for _ in range(5):
        assert (await limiter.peek("2/minute", "wrong", "u1")).allowed  # counts nothing
    await limiter.hit("2/minute", "wrong", "u1")
    assert (await limiter.peek("2/minute", "wrong", "u1")).allowed
    await limiter.hit("2/minute", "wrong", "u1")
    refused = await limiter.peek("2/minute", "wrong", "u1")
    assert not refused.allowed and 1 <= refused.retry_after <= 60


async def test_concurrent_hits_never_exceed_the_limit(limiter: RateLimiter) -> None:
    results = await asyncio.gather(*(limiter.hit("10/minute", "burst") for _ in range(60)))
    assert sum(r.allowed for r in results) == 10


async def test_two_replicas_share_one_budget(namespace: str, redis: Redis, redis_url: str) -> None:
    replica_a = RateLimiter(redis_url, key_prefix("test", namespace))
    replica_b = RateLimiter(redis_url, key_prefix("test", namespace))
    results = await asyncio.gather(
        *(r.hit("8/minute", "shared") for _ in range(20) for r in (replica_a, replica_b))
    )
    assert sum(r.allowed for r in results) == 8


async def test_keys_live_under_the_namespace_prefix(
    limiter: RateLimiter, namespace: str, redis: Redis
) -> None:
    await limiter.hit("5/minute", "prefix-check")
    keys = [k async for k in redis.scan_iter(match=f"tessera:{namespace}:test:*")]
    assert keys
